//! Image files (PNG, JPEG, WebP, BMP of any size and colour type) turned into raw images of a data
//! set's shape: the bytes [`super::Dataset::image`] would hold, ready for the same
//! [`super::Pipeline`] as the data set's own images.
//!
//! The conversion, in order:
//!
//! 1. Decoding is bounded: at most [`FILE_LIMIT`] bytes are read, an image of more than
//!    [`PIXEL_LIMIT`] pixels (or a side over [`SIDE_LIMIT`]) is refused from its header before
//!    any pixel is decoded, and the decoder may allocate at most [`MEMORY_LIMIT`] bytes; so a
//!    decompression bomb costs nothing. The format is told from the content, not the name.
//! 2. The image is turned as its EXIF orientation says (as a photo viewer shows it).
//! 3. Every colour type becomes 8-bit RGBA: grey is copied to R, G and B; a palette is looked
//!    up; 16-bit samples are rounded to 8 bits (`round(v * 255 / 65535)`).
//! 4. With `invert`, R, G and B become `255 - v` (a dark drawing on a light background becomes
//!    a light one on black, as in MNIST).
//! 5. Alpha is composited over black, the background of the data sets (and of zero padding):
//!    `round(v * alpha / 255)`. With `invert` this equals compositing over white and inverting.
//! 6. One channel: luma as PIL's `convert("L")` (what torchvision's `Grayscale` does to a PIL
//!    image), `(19595 R + 38470 G + 7471 B + 32768) >> 16`, i.e. ITU-R 601-2
//!    `0.299 R + 0.587 G + 0.114 B` rounded; three channels: R, G, B.
//! 7. The image is resized, keeping its aspect ratio, so that it covers `H x W` (the side that
//!    is relatively shorter becomes exactly the target's, the other `floor(side * scale)`, as
//!    torchvision's `Resize(int)`), with a triangle (bilinear) filter whose support widens when
//!    shrinking (like PIL's antialiased `BILINEAR`), then the central `H x W` window is cut, its
//!    offset rounded as `CenterCrop` does. An image already `H x W` is left as it is.
//!
//! The result is CHW bytes; [`super::Pipeline::apply`] then scales them to `[0, 1]` (`v / 255`)
//! and runs the transforms, exactly as for the data set's images.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, Pixel};

use crate::bounded::ReadErrorKind;

/// File name extensions of the images a folder is searched for (compared without case).
pub const EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "bmp"];
/// The most bytes read from one image file (64 MiB).
pub const FILE_LIMIT: u64 = 64 << 20;
/// The most pixels (width times height) decoded from one image: 50 megapixels.
pub const PIXEL_LIMIT: u64 = 50_000_000;
/// The longest side decoded, in pixels.
pub const SIDE_LIMIT: u32 = 1 << 16;
/// The most memory one decoder may allocate (512 MiB).
pub const MEMORY_LIMIT: u64 = 512 << 20;

/// Why an image file could not be turned into an image.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ImageFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ImageErrorKind,
}

/// What is wrong with an image file.
#[derive(Debug, thiserror::Error)]
pub enum ImageErrorKind {
    /// The file could not be read ([`crate::bounded`]).
    #[error("cannot read it: {0}")]
    Read(ReadErrorKind),
    /// The content is not one of the formats read.
    #[error("not a PNG, JPEG, WebP or BMP image ({0})")]
    NotImage(String),
    /// The header promises more pixels than are decoded.
    #[error(
        "{width}x{height} pixels, more than the {} megapixels (and {SIDE_LIMIT} pixels a side) \
         runner decodes",
        PIXEL_LIMIT / 1_000_000
    )]
    TooManyPixels {
        /// Width in the header.
        width: u32,
        /// Height in the header.
        height: u32,
    },
    /// The header says the image has no pixel.
    #[error("the image has no pixels ({width}x{height})")]
    Empty {
        /// Width in the header.
        width: u32,
        /// Height in the header.
        height: u32,
    },
    /// Decoding would take more memory than allowed.
    #[error("decoding it needs more than the {} MiB of memory runner allows", MEMORY_LIMIT >> 20)]
    TooMuchMemory,
    /// The data is damaged or cut short.
    #[error("corrupt or truncated {format} data: {message}")]
    Corrupt {
        /// `PNG`, `JPEG` or `WebP`.
        format: &'static str,
        /// The decoder's words.
        message: String,
    },
}

/// The experiment's images have a channel count no image file converts to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the experiment's images have {0} channels, but image files convert only to 1 (grey) or 3 \
     (RGB) channels"
)]
pub struct ChannelsError(pub usize);

/// How image files become raw images of one shape: built once per data set shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    channels: usize,
    height: u32,
    width: u32,
    invert: bool,
}

impl Conversion {
    /// The conversion to images of `shape` (`[C, H, W]`, `C` 1 or 3), with or without
    /// inverting the colours (step 4 of the [module's](self) list).
    pub fn new(shape: [usize; 3], invert: bool) -> Result<Conversion, ChannelsError> {
        let [channels, h, w] = shape;
        if channels != 1 && channels != 3 {
            return Err(ChannelsError(channels));
        }
        // A data set's sides are small; anything else is not an image size.
        let side = |s: usize| u32::try_from(s.max(1)).unwrap_or(u32::MAX);
        Ok(Conversion {
            channels,
            height: side(h),
            width: side(w),
            invert,
        })
    }

    /// `[C, H, W]` of the images made.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height as usize, self.width as usize]
    }

    /// Reads, decodes and converts the file at `path`.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, ImageFileError> {
        let err = |kind| ImageFileError {
            path: path.to_path_buf(),
            kind,
        };
        let bytes = crate::bounded::read(path, FILE_LIMIT)
            .map_err(|e| err(ImageErrorKind::Read(e.kind)))?;
        let image = decode(&bytes).map_err(err)?;
        Ok(self.convert(&image))
    }

    /// Converts a decoded image (steps 3 to 7 of the [module's](self) list): CHW bytes of
    /// [`Conversion::shape`].
    pub fn convert(&self, image: &DynamicImage) -> Vec<u8> {
        if self.channels == 1 {
            self.fit(self.flatten::<image::Luma<u8>>(image))
        } else {
            self.fit(self.flatten::<image::Rgb<u8>>(image))
        }
    }

    /// Steps 3 to 6: the image as 8-bit pixels of the target's channel count.
    fn flatten<P: Pixel<Subpixel = u8>>(&self, image: &DynamicImage) -> ImageBuffer<P, Vec<u8>> {
        let rgba = image.to_rgba8();
        let (w, h) = rgba.dimensions();
        let invert = self.invert;
        let channel = |v: u8, a: u8| over_black(if invert { 255 - v } else { v }, a);
        let mut out = ImageBuffer::<P, Vec<u8>>::new(w, h);
        for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
            let [r, g, b, a] = src.0;
            let (r, g, b) = (channel(r, a), channel(g, a), channel(b, a));
            match dst.channels_mut() {
                [l] => *l = luma(r, g, b),
                [dr, dg, db] => (*dr, *dg, *db) = (r, g, b),
                // `Conversion::new` admits 1 and 3 channels only.
                other => other.fill(0),
            }
        }
        out
    }

    /// Step 7: resizes `buf` to cover the target, cuts the central window and returns it
    /// channel-major.
    fn fit<P: Pixel<Subpixel = u8> + 'static>(&self, buf: ImageBuffer<P, Vec<u8>>) -> Vec<u8> {
        let (w, h) = buf.dimensions();
        let (tw, th) = (self.width, self.height);
        let (nw, nh) = covering_size(w, h, tw, th);
        let buf = if (nw, nh) == (w, h) {
            buf
        } else {
            imageops::resize(&buf, nw, nh, FilterType::Triangle)
        };
        let left = super::transform::center_offset(nw as usize, tw as usize).max(0) as u32;
        let top = super::transform::center_offset(nh as usize, th as usize).max(0) as u32;
        let c = self.channels;
        let hw = (tw * th) as usize;
        let mut out = vec![0u8; c * hw];
        for y in 0..th {
            for x in 0..tw {
                // Always inside: the resized image covers the window.
                let Some(px) = buf.get_pixel_checked(left + x, top + y) else {
                    continue;
                };
                let i = (y * tw + x) as usize;
                for (ch, &v) in px.channels().iter().enumerate().take(c) {
                    out[ch * hw + i] = v;
                }
            }
        }
        out
    }
}

/// Whether `path`'s extension is one of [`EXTENSIONS`]: what a folder is searched for.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decodes a PNG, JPEG, WebP or BMP file's bytes within the limits, turned as its EXIF orientation
/// says (steps 1 and 2 of the [module's](self) list).
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ImageErrorKind> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageErrorKind::NotImage(e.to_string()))?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Bmp)) => {
            f
        }
        Some(other) => {
            return Err(ImageErrorKind::NotImage(format!(
                "it is a {} file",
                format_name(other)
            )))
        }
        None => {
            return Err(ImageErrorKind::NotImage(
                "its first bytes match no image format".into(),
            ))
        }
    };
    let name = format_name(format);
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageErrorKind::TooMuchMemory,
        other => ImageErrorKind::Corrupt {
            format: name,
            message: other.to_string(),
        },
    };
    // The sizes are checked here, on the header, to name them; the decoder only bounds memory.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MEMORY_LIMIT);
    let mut reader = reader;
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageErrorKind::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > PIXEL_LIMIT
        || width > SIDE_LIMIT
        || height > SIDE_LIMIT
    {
        return Err(ImageErrorKind::TooManyPixels { width, height });
    }
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// A format's usual name.
fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Qoi => "QOI",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Farbfeld => "farbfeld",
        _ => "unsupported image",
    }
}

/// `v` composited over black with opacity `a`: `round(v * a / 255)`.
fn over_black(v: u8, a: u8) -> u8 {
    ((u32::from(v) * u32::from(a) + 127) / 255) as u8
}

/// PIL's `L` of an RGB pixel: ITU-R 601-2 luma in 16-bit fixed point, rounded.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * u32::from(r) + 38470 * u32::from(g) + 7471 * u32::from(b) + 0x8000) >> 16) as u8
}

/// The size a `w x h` image is resized to so that it covers `tw x th` with its aspect ratio
/// kept: the relatively shorter side becomes the target's, the other `floor(side * scale)`.
fn covering_size(w: u32, h: u32, tw: u32, th: u32) -> (u32, u32) {
    let (w64, h64, tw64, th64) = (u64::from(w), u64::from(h), u64::from(tw), u64::from(th));
    let fit = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    if w64 * th64 >= h64 * tw64 {
        // Wider than the target (or the same shape): the height decides.
        (fit((w64 * th64 / h64).max(tw64)), th)
    } else {
        (tw, fit((h64 * tw64 / w64).max(th64)))
    }
}

#[cfg(test)]
mod tests {
    use image::{
        GrayAlphaImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage,
    };

    use super::*;

    /// `image` encoded as `format`.
    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).expect("encode");
        bytes.into_inner()
    }

    /// Decodes and converts `bytes` to `shape`.
    fn convert(bytes: &[u8], shape: [usize; 3], invert: bool) -> Vec<u8> {
        let conv = Conversion::new(shape, invert).expect("1 or 3 channels");
        conv.convert(&decode(bytes).expect("decodes"))
    }

    /// A palette PNG (colour type 3) of `w x h` indices into `palette`, with a `tRNS` alpha
    /// for each entry.
    fn palette_png(w: u32, h: u32, palette: &[[u8; 4]], indices: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(
            palette
                .iter()
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect::<Vec<_>>(),
        );
        enc.set_trns(palette.iter().map(|p| p[3]).collect::<Vec<_>>());
        let mut writer = enc.write_header().expect("header");
        writer.write_image_data(indices).expect("data");
        writer.finish().expect("finish");
        bytes
    }

    #[test]
    fn every_colour_type_becomes_the_same_pixels() {
        // Golden values: PIL's `Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0))` is
        // 76, 150 and 29 for pure red, green and blue, 255 for white.
        let rgb = RgbImage::from_raw(4, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
            .expect("4 pixels");
        let png = encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 1, 4], false), [76, 150, 29, 255], "luma");
        assert_eq!(
            convert(&png, [3, 1, 4], false),
            [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255],
            "RGB, channel-major"
        );
        assert_eq!(
            convert(&png, [1, 1, 4], true),
            [179, 105, 226, 0],
            "inverted: the luma of (0, 255, 255) etc."
        );

        // (200, 100, 50) at alpha 128 over black: round(v * 128 / 255).
        let rgba = RgbaImage::from_raw(2, 1, vec![200, 100, 50, 128, 9, 9, 9, 0]).expect("2 px");
        let png = encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
        assert_eq!(convert(&png, [3, 1, 2], false), [100, 0, 50, 0, 25, 0]);
        assert_eq!(
            convert(&png, [3, 1, 2], true),
            [28, 0, 78, 0, 103, 0],
            "inverted, then over black: (255 - v) * 128 / 255; fully transparent stays black"
        );

        let gray = GrayImage::from_raw(3, 1, vec![0, 128, 255]).expect("3 px");
        let png = encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png);
        assert_eq!(
            convert(&png, [1, 1, 3], false),
            [0, 128, 255],
            "grey stays grey"
        );
        assert_eq!(
            convert(&png, [3, 1, 3], false),
            [0, 128, 255, 0, 128, 255, 0, 128, 255],
            "grey to RGB copies it"
        );

        let gray_alpha = GrayAlphaImage::from_raw(2, 1, vec![255, 255, 255, 51]).expect("2 px");
        let png = encode(&DynamicImage::ImageLumaA8(gray_alpha), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 1, 2], false), [255, 51]);

        // 16-bit samples: round(v * 255 / 65535).
        let g16: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_raw(3, 1, vec![65535, 257 * 100, 128]).expect("3 px");
        let png = encode(&DynamicImage::ImageLuma16(g16), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 1, 3], false), [255, 100, 0]);
        let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_raw(1, 1, vec![65535, 0, 257 * 7]).expect("1 px");
        let png = encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png);
        assert_eq!(convert(&png, [3, 1, 1], false), [255, 0, 7]);
        let la16: ImageBuffer<LumaA<u16>, Vec<u16>> =
            ImageBuffer::from_raw(1, 1, vec![65535, 32896]).expect("1 px");
        let png = encode(&DynamicImage::ImageLumaA16(la16), ImageFormat::Png);
        assert_eq!(
            convert(&png, [1, 1, 1], false),
            [128],
            "alpha 32896/65535 is 128/255"
        );
        let rgba16: ImageBuffer<Rgba<u16>, Vec<u16>> =
            ImageBuffer::from_raw(1, 1, vec![65535, 65535, 65535, 65535]).expect("1 px");
        let png = encode(&DynamicImage::ImageRgba16(rgba16), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 1, 1], false), [255]);

        // A palette with a transparent entry.
        let png = palette_png(
            3,
            1,
            &[[255, 0, 0, 255], [0, 0, 255, 255], [9, 9, 9, 0]],
            &[1, 0, 2],
        );
        assert_eq!(convert(&png, [1, 1, 3], false), [29, 76, 0]);
        assert_eq!(
            convert(&png, [3, 1, 3], false),
            [0, 255, 0, 0, 0, 0, 255, 0, 0]
        );
    }

    #[test]
    fn jpeg_and_webp_decode_to_the_same_shape() {
        // A uniform grey survives JPEG's rounding within a level or two, WebP lossless exactly.
        let gray = RgbImage::from_pixel(20, 10, Rgb([128, 128, 128]));
        let image = DynamicImage::ImageRgb8(gray);
        let jpeg = encode(&image, ImageFormat::Jpeg);
        assert_eq!(&jpeg[..2], [0xff, 0xd8], "a JPEG file");
        let got = convert(&jpeg, [1, 8, 8], false);
        assert_eq!(got.len(), 64);
        assert!(got.iter().all(|&v| v.abs_diff(128) <= 2), "{got:?}");
        let webp = encode(&image, ImageFormat::WebP);
        assert_eq!(&webp[8..12], b"WEBP", "a WebP file");
        assert_eq!(convert(&webp, [3, 4, 4], false), vec![128; 48]);
    }

    #[test]
    fn images_are_resized_to_cover_then_cut_in_the_centre() {
        type Size = (u32, u32);
        let cases: [(Size, Size, Size, &str); 5] = [
            ((56, 28), (28, 28), (56, 28), "wider: the height decides"),
            ((28, 56), (28, 28), (28, 56), "taller: the width decides"),
            ((100, 100), (28, 28), (28, 28), "same shape: plain resize"),
            ((1, 1), (32, 32), (32, 32), "upscaled"),
            ((30, 20), (28, 28), (42, 28), "floor(30 * 28 / 20) = 42"),
        ];
        for (from, to, want, what) in cases {
            assert_eq!(covering_size(from.0, from.1, to.0, to.1), want, "{what}");
        }
        // A 56x28 image: black, white, black in thirds of 14, 28 and 14 columns; the central
        // 28x28 window is the white part, untouched.
        let img = GrayImage::from_fn(56, 28, |x, _| {
            Luma([if (14..42).contains(&x) { 255 } else { 0 }])
        });
        let png = encode(&DynamicImage::ImageLuma8(img), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 28, 28], false), vec![255; 28 * 28]);
        // Halved: left half black, right half white; the edge is blended, the rest not.
        let img = GrayImage::from_fn(56, 56, |x, _| Luma([if x < 28 { 0 } else { 255 }]));
        let png = encode(&DynamicImage::ImageLuma8(img), ImageFormat::Png);
        let got = convert(&png, [1, 28, 28], false);
        for row in got.chunks_exact(28) {
            assert_eq!(row[..12], [0; 12], "{row:?}");
            assert_eq!(row[16..], [255; 12], "{row:?}");
            assert!(row.windows(2).all(|p| p[0] <= p[1]), "{row:?}");
        }
        // An image of the target size is passed through bit for bit.
        let img = GrayImage::from_fn(5, 3, |x, y| Luma([(x * 40 + y * 7) as u8]));
        let png = encode(&DynamicImage::ImageLuma8(img.clone()), ImageFormat::Png);
        assert_eq!(convert(&png, [1, 3, 5], false), img.into_raw());
    }

    #[test]
    fn bad_files_are_named_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conv = Conversion::new([1, 28, 28], false).expect("grey");
        let png = encode(
            &DynamicImage::ImageLuma8(GrayImage::from_pixel(40, 40, Luma([7]))),
            ImageFormat::Png,
        );
        // PNGs whose header promises many pixels, followed by the start of their data.
        let header_only = |w: u32, h: u32| {
            let mut bytes = Vec::new();
            let mut writer = png::Encoder::new(&mut bytes, w, h)
                .write_header()
                .expect("header");
            writer
                .write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0xed, 0xc1])
                .expect("chunk");
            drop(writer);
            bytes
        };
        let (bomb, wide) = (header_only(100_000, 100_000), header_only(70_000, 1));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
        let cases: [(&str, Vec<u8>, &str); 6] = [
            (
                "truncated.png",
                png[..png.len() / 2].to_vec(),
                "corrupt or truncated PNG data",
            ),
            (
                "notes.txt",
                b"not an image at all".to_vec(),
                "its first bytes match no image format",
            ),
            (
                "anim.gif",
                gif,
                "not a PNG, JPEG, WebP or BMP image (it is a GIF file)",
            ),
            (
                "bomb.png",
                bomb,
                "100000x100000 pixels, more than the 50 megapixels",
            ),
            ("wide.png", wide, "70000x1 pixels"),
            (
                "empty.jpg",
                Vec::new(),
                "its first bytes match no image format",
            ),
        ];
        for (name, bytes, message) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let err = conv.read(&path).expect_err(name);
            let text = err.to_string();
            assert!(
                text.starts_with(&path.display().to_string()),
                "{name}: {text}"
            );
            assert!(
                text.contains(message),
                "{name}: expected {message:?} in {text}"
            );
        }
        let missing = conv
            .read(&dir.path().join("missing.png"))
            .expect_err("missing");
        assert!(
            missing.to_string().contains("cannot read it: no such file"),
            "{missing}"
        );
        let folder = conv.read(dir.path()).expect_err("a folder");
        assert!(folder.to_string().contains("directory"), "{folder}");
        assert_eq!(
            Conversion::new([2, 8, 8], false),
            Err(ChannelsError(2)),
            "two channels: no image converts to that"
        );
    }

    #[test]
    fn folders_are_searched_by_extension() {
        for (name, listed) in [
            ("a.png", true),
            ("b.JPG", true),
            ("c.jpeg", true),
            ("d.WebP", true),
            ("e.gif", false),
            ("notes.txt", false),
            ("png", false),
        ] {
            assert_eq!(has_image_extension(Path::new(name)), listed, "{name}");
        }
    }
}
