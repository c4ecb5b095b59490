//! [`Picture`]: an RGB image in memory, drawn on with plotters and encoded to PNG in memory.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::Canvas;
use super::{PlotError, MAX_PIXELS};

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

impl Picture {
    /// A picture of `width x height` filled with `background`; fails above [`MAX_PIXELS`].
    pub fn new(
        what: &'static str,
        width: u32,
        height: u32,
        background: RGBColor,
    ) -> Result<Picture, PlotError> {
        let n = u64::from(width) * u64::from(height);
        if n == 0 {
            return Err(PlotError::Empty(format!(
                "{what} would be {width}x{height} pixels"
            )));
        }
        if n > MAX_PIXELS {
            return Err(PlotError::TooLarge {
                what,
                width: width.into(),
                height: height.into(),
                max: MAX_PIXELS,
            });
        }
        let RGBColor(r, g, b) = background;
        Ok(Picture {
            width,
            height,
            pixels: [r, g, b].repeat(n as usize),
        })
    }

    /// The colour at (`x`, `y`).
    ///
    /// # Panics
    /// Outside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "({x}, {y}) outside");
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Sets the colour at (`x`, `y`); outside the picture nothing happens.
    pub fn set(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// Copies `src` into this picture with its top-left corner at (`x`, `y`), every pixel
    /// enlarged to a `scale x scale` block; what falls outside is cut off.
    pub fn blit_scaled(&mut self, src: &Picture, x: u32, y: u32, scale: u32) {
        for sy in 0..src.height {
            for sx in 0..src.width {
                let rgb = src.pixel(sx, sy);
                for dy in 0..scale {
                    for dx in 0..scale {
                        self.set(x + sx * scale + dx, y + sy * scale + dy, rgb);
                    }
                }
            }
        }
    }

    /// Number of distinct colours (tests use it to tell a blank picture from a drawn one).
    pub fn distinct_colors(&self) -> usize {
        let mut seen: Vec<u32> = self
            .pixels
            .chunks_exact(3)
            .map(|p| u32::from_be_bytes([0, p[0], p[1], p[2]]))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// Runs `draw` on a plotters drawing area over this picture.
    pub fn draw<F>(&mut self, what: &'static str, draw: F) -> Result<(), PlotError>
    where
        F: FnOnce(&DrawingArea<Canvas<'_>, Shift>) -> Result<(), PlotError>,
    {
        super::font::ensure_registered();
        let area = Canvas::new(self).into_drawing_area();
        draw(&area)?;
        area.present().map_err(super::draw_err(what))
    }

    /// The picture as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, PlotError> {
        let mut out = Vec::with_capacity(self.pixels.len() / 4);
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let png_err = |e: png::EncodingError| PlotError::Png(e.to_string());
            let mut writer = enc.write_header().map_err(png_err)?;
            writer.write_image_data(&self.pixels).map_err(png_err)?;
            writer.finish().map_err(png_err)?;
        }
        Ok(out)
    }

    /// Decodes PNG bytes (8-bit grey, grey + alpha, RGB or RGBA; alpha is dropped).
    pub fn from_png(bytes: &[u8]) -> Result<Picture, PlotError> {
        let png_err = |e: png::DecodingError| PlotError::Png(e.to_string());
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(png_err)?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| PlotError::Png("image too large".into()))?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(png_err)?;
        buf.truncate(info.buffer_size());
        let channels = info.color_type.samples();
        let pixels = match channels {
            1 => buf.iter().flat_map(|&g| [g, g, g]).collect(),
            2 => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            3 => buf,
            _ => buf
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        };
        Ok(Picture {
            width: info.width,
            height: info.height,
            pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_scaled_blit() {
        let mut src = Picture::new("t", 2, 1, BLACK).unwrap();
        src.set(1, 0, [10, 20, 30]);
        let mut dst = Picture::new("t", 7, 4, WHITE).unwrap();
        dst.blit_scaled(&src, 1, 1, 3);
        assert_eq!(dst.pixel(0, 0), [255, 255, 255]);
        assert_eq!(dst.pixel(1, 1), [0, 0, 0]);
        assert_eq!(dst.pixel(3, 3), [0, 0, 0]);
        assert_eq!(dst.pixel(4, 1), [10, 20, 30]);
        assert_eq!(dst.pixel(6, 3), [10, 20, 30]);
        assert_eq!(dst.distinct_colors(), 3);
        let back = Picture::from_png(&dst.png().unwrap()).unwrap();
        assert_eq!(back, dst);
    }

    #[test]
    fn oversized_pictures_are_refused() {
        assert!(matches!(
            Picture::new("huge", 100_000, 100_000, WHITE),
            Err(PlotError::TooLarge { .. })
        ));
        assert!(Picture::new("empty", 0, 10, WHITE).is_err());
    }
}
