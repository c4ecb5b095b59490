//! [`Canvas`]: a plotters drawing backend over a [`Picture`], with its own text rendering.
//!
//! plotters' bitmap text (through its `ab_glyph` feature) places glyphs on whole pixels and
//! ignores side bearings, which spaces letters unevenly; this backend lays text out with
//! [`super::font::layout`] instead and blends anti-aliased coverage into the pixels. Shapes use
//! plotters' own rasterizer.

use std::convert::Infallible;

use ab_glyph::Font;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::font::{font, layout, line_height, text_size};
use super::Picture;

/// A drawing backend writing into a [`Picture`].
#[derive(Debug)]
pub struct Canvas<'a> {
    picture: &'a mut Picture,
}

impl<'a> Canvas<'a> {
    /// A backend drawing on `picture`.
    pub fn new(picture: &'a mut Picture) -> Self {
        Canvas { picture }
    }

    /// Blends `color` at `alpha` (times the colour's own alpha) into pixel (`x`, `y`).
    fn blend(&mut self, (x, y): BackendCoord, color: BackendColor, alpha: f64) {
        let (w, h) = (self.picture.width as i32, self.picture.height as i32);
        if x < 0 || y < 0 || x >= w || y >= h {
            return;
        }
        let a = (color.alpha * alpha).clamp(0.0, 1.0);
        if a <= 0.0 {
            return;
        }
        let i = (y as usize * w as usize + x as usize) * 3;
        let (r, g, b) = color.rgb;
        for (k, src) in [r, g, b].into_iter().enumerate() {
            let dst = f64::from(self.picture.pixels[i + k]);
            self.picture.pixels[i + k] = (f64::from(src) * a + dst * (1.0 - a)).round() as u8;
        }
    }
}

impl DrawingBackend for Canvas<'_> {
    type ErrorType = Infallible;

    fn get_size(&self) -> (u32, u32) {
        (self.picture.width, self.picture.height)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        self.blend(point, color, 1.0);
        Ok(())
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let size = style.size() as f32;
        let (glyphs, width) = layout(text, size);
        let height = line_height(size);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        for mut glyph in glyphs {
            glyph.position.x += dx;
            glyph.position.y += dy;
            let Some(outline) = font().outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
            let mut coverage = Vec::new();
            outline.draw(|x, y, c| coverage.push((x as i32 + x0, y as i32 + y0, c)));
            for (x, y, c) in coverage {
                let (tx, ty) = transform.transform(x, y);
                self.blend((pos.0 + tx, pos.1 + ty), color, f64::from(c));
            }
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Infallible>> {
        Ok(text_size(text, style.size()))
    }
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;
    use plotters::style::text_anchor::Pos;

    use super::super::font::text;
    use super::*;

    /// Bounding box (x0, y0, x1, y1) of the pixels that are not white.
    fn ink(p: &Picture) -> Option<(u32, u32, u32, u32)> {
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for y in 0..p.height {
            for x in 0..p.width {
                if p.pixel(x, y) != [255, 255, 255] {
                    b = Some(match b {
                        None => (x, y, x, y),
                        Some((a, c, d, e)) => (a.min(x), c.min(y), d.max(x), e.max(y)),
                    });
                }
            }
        }
        b
    }

    #[test]
    fn text_lands_where_anchored_and_rotates() {
        let mut pic = Picture::new("t", 200, 200, WHITE).unwrap();
        pic.draw("t", |area| {
            let style = text(20.0, &BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            area.draw_text("HHHH", &style, (100, 100)).unwrap();
            Ok(())
        })
        .unwrap();
        let (x0, y0, x1, y1) = ink(&pic).expect("text drawn");
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
        assert!(cx.abs_diff(100) <= 2, "centred horizontally: {x0}..{x1}");
        // The box includes the descender space under the capitals.
        assert!(cy.abs_diff(100) <= 4, "centred vertically: {y0}..{y1}");
        assert!(x1 - x0 > 2 * (y1 - y0), "horizontal");

        let mut pic = Picture::new("t", 200, 200, WHITE).unwrap();
        pic.draw("t", |area| {
            let style = text(20.0, &BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
                .transform(FontTransform::Rotate270);
            area.draw_text("HHHH", &style, (100, 100)).unwrap();
            Ok(())
        })
        .unwrap();
        let (x0, y0, x1, y1) = ink(&pic).expect("text drawn");
        assert!(y1 - y0 > 2 * (x1 - x0), "vertical");
        assert!(((y0 + y1) / 2).abs_diff(100) <= 2);
    }
}
