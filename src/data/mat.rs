//! The part of MATLAB's level-5 MAT-file format (v5, v6 and v7: what `save -v7` and
//! `scipy.io.savemat` write) that published data sets use: real numeric arrays, each stored
//! plainly (`miMATRIX`) or zlib-compressed (`miCOMPRESSED`), in either byte order.
//!
//! Hand-written rather than taken from the `matfile` crate, which reads the whole file, inflates
//! every compressed element without a bound, multiplies dimensions unchecked (a debug-build
//! panic on a crafted file) and reports every fault as one opaque parse error. Here the file is
//! streamed: only the wanted variables are inflated, each one's element count is checked against
//! the caller's bound before anything is allocated, and every fault is a named [`MatError`].
//! Cell, struct, object, character and sparse arrays are skipped when not wanted and refused when
//! wanted; v7.3 files (HDF5) are recognised and refused with a hint.

use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::ZlibDecoder;

/// `miINT8`: the type of an array name.
const MI_INT8: u32 = 1;
/// `miUINT8`.
const MI_UINT8: u32 = 2;
/// `miINT32`: the type of the dimensions.
const MI_INT32: u32 = 5;
/// `miUINT32`: the type of the array flags.
const MI_UINT32: u32 = 6;
/// `miMATRIX`: an array.
const MI_MATRIX: u32 = 14;
/// `miCOMPRESSED`: a zlib stream holding one element.
const MI_COMPRESSED: u32 = 15;

/// The most dimensions an array may have (MATLAB itself has no limit; data sets use 2 to 4).
const MAX_DIMS: u64 = 32;
/// The longest array name accepted (MATLAB's limit is 63 characters).
const MAX_NAME: u64 = 4096;
/// The most bytes reserved for an element's data before they are read (SVHN's training `X`,
/// 225 MB, fits at once).
const INITIAL_CAPACITY: u64 = 256 << 20;

/// Why a MAT-file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MatError {
    /// The file does not start with a MAT-file header.
    #[error("not a MAT-file: the header does not start with `MATLAB` (found {found:?})")]
    NotMat {
        /// The first bytes, as text.
        found: String,
    },
    /// A v7.3 MAT-file, which is an HDF5 file.
    #[error(
        "a MAT-file v7.3 (HDF5), which runner does not read: save it as v7 (`save -v7` in \
         MATLAB, or `scipy.io.savemat`)"
    )]
    V73,
    /// The header's version field is neither 0x0100 nor 0x0200.
    #[error("unknown MAT-file version {version:#06x} (expected 0x0100)")]
    Version {
        /// The field as found.
        version: u16,
    },
    /// The header's byte-order mark is neither `IM` nor `MI`.
    #[error("bad byte-order mark {found:?} in the header (expected \"IM\" or \"MI\")")]
    ByteOrder {
        /// The two bytes found.
        found: String,
    },
    /// The file (or a compressed stream) ends inside an element.
    #[error("truncated: the file ends inside {what}")]
    Truncated {
        /// The part that is incomplete.
        what: String,
    },
    /// A compressed element is not valid zlib data.
    #[error("corrupt compressed data in {what}: {source}")]
    Inflate {
        /// The part being read.
        what: String,
        /// The decoder's error.
        source: io::Error,
    },
    /// An element is not what the format puts there.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The part being read.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A wanted array holds more elements than the caller accepts.
    #[error("variable `{name}` holds {elements} elements, more than the {limit} expected")]
    TooLarge {
        /// The variable.
        name: String,
        /// Its element count (the product of its dimensions).
        elements: u128,
        /// The most accepted.
        limit: u64,
    },
    /// A wanted variable is not a real numeric array.
    #[error("variable `{name}` is {what}, not a real numeric array")]
    NotNumeric {
        /// The variable.
        name: String,
        /// What it is (`a cell array`, `complex`, ...).
        what: &'static str,
    },
    /// A wanted variable is not in the file.
    #[error("no variable `{name}` in the file")]
    Missing {
        /// The variable.
        name: String,
    },
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] crate::bounded::ReadError),
    /// Reading failed midway.
    #[error("{0}")]
    Io(io::Error),
}

/// A numeric array's class (`mxDOUBLE_CLASS`, `mxUINT8_CLASS`, ...), by its MATLAB name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `double`.
    Double,
    /// `single`.
    Single,
    /// `int8`.
    Int8,
    /// `uint8`.
    UInt8,
    /// `int16`.
    Int16,
    /// `uint16`.
    UInt16,
    /// `int32`.
    Int32,
    /// `uint32`.
    UInt32,
    /// `int64`.
    Int64,
    /// `uint64`.
    UInt64,
}

impl Class {
    /// The class of an array-flags class byte, or what the array is when it is not numeric.
    fn from_byte(b: u8) -> Result<Self, &'static str> {
        Ok(match b {
            6 => Class::Double,
            7 => Class::Single,
            8 => Class::Int8,
            9 => Class::UInt8,
            10 => Class::Int16,
            11 => Class::UInt16,
            12 => Class::Int32,
            13 => Class::UInt32,
            14 => Class::Int64,
            15 => Class::UInt64,
            1 => return Err("a cell array"),
            2 => return Err("a struct"),
            3 => return Err("an object"),
            4 => return Err("a character array"),
            5 => return Err("a sparse array"),
            _ => return Err("of an unknown class"),
        })
    }

    /// The MATLAB name (`double`, `uint8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Class::Double => "double",
            Class::Single => "single",
            Class::Int8 => "int8",
            Class::UInt8 => "uint8",
            Class::Int16 => "int16",
            Class::UInt16 => "uint16",
            Class::Int32 => "int32",
            Class::UInt32 => "uint32",
            Class::Int64 => "int64",
            Class::UInt64 => "uint64",
        }
    }
}

/// An array's values, column-major (MATLAB order: the first index varies fastest).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Stored as `miUINT8` bytes, kept as they are.
    Bytes(Vec<u8>),
    /// Stored as any other numeric type, widened to `f64`. (MATLAB may store a `double`
    /// array's values in a narrower type when they fit; they are the same numbers.)
    Values(Vec<f64>),
}

/// One real numeric variable of a MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The class it was saved with.
    pub class: Class,
    /// Its dimensions, at least two (MATLAB drops trailing dimensions of 1 beyond the second).
    pub dims: Vec<usize>,
    /// Its values.
    pub data: Data,
}

/// A variable to read: its name and the most elements it may hold.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The variable's name.
    pub name: &'a str,
    /// The most elements accepted; a larger array is [`MatError::TooLarge`], found before
    /// anything is allocated.
    pub max_elements: u64,
}

/// Reads the `wanted` variables of the MAT-file at `path`, in the order asked; every one must
/// be there. Other variables are skipped without being inflated; reading stops once every
/// wanted variable is found.
pub fn read_arrays(path: &Path, wanted: &[Wanted<'_>]) -> Result<Vec<Array>, MatError> {
    let file = crate::bounded::open(path)?;
    read_arrays_from(BufReader::new(file), wanted)
}

/// [`read_arrays`] from any reader positioned at the start of a MAT-file.
pub fn read_arrays_from(mut r: impl Read, wanted: &[Wanted<'_>]) -> Result<Vec<Array>, MatError> {
    let big = read_header(&mut r)?;
    let mut found: Vec<Option<Array>> = vec![None; wanted.len()];
    let mut index = 0usize;
    while found.iter().any(Option::is_none) {
        let what = format!("data element {index}");
        let Some(tag) = read_tag(&mut r, big, &what, true)? else {
            break;
        };
        let len = u64::from(tag.len);
        let mut element = (&mut r).take(len);
        let got = match tag.ty {
            MI_COMPRESSED => {
                let mut z = ZlibDecoder::new(&mut element);
                let inner = format!("compressed {what}");
                match read_tag(&mut z, big, &inner, false)? {
                    Some(t) if t.ty == MI_MATRIX => {
                        read_matrix(&mut (&mut z).take(u64::from(t.len)), big, wanted, &inner)?
                    }
                    _ => None,
                }
            }
            MI_MATRIX => read_matrix(&mut element, big, wanted, &what)?,
            _ => None,
        };
        if let Some((i, array)) = got {
            if found[i].is_none() {
                found[i] = Some(array);
            }
        }
        // The rest of the element (a skipped variable, or what follows the data), then the
        // padding to 8 bytes that plain elements carry.
        skip(&mut element, &what)?;
        if tag.ty != MI_COMPRESSED {
            skip_padding(&mut r, len)?;
        }
        index += 1;
    }
    found
        .into_iter()
        .zip(wanted)
        .map(|(a, w)| {
            a.ok_or_else(|| MatError::Missing {
                name: w.name.to_string(),
            })
        })
        .collect()
}

/// Checks the 128-byte header; returns whether the file is big-endian.
fn read_header(r: &mut impl Read) -> Result<bool, MatError> {
    let mut h = [0u8; 128];
    let n = fill(r, &mut h, "the 128-byte header")?;
    if !h.starts_with(b"MATLAB") {
        return Err(MatError::NotMat {
            found: String::from_utf8_lossy(&h[..n.min(20)]).into_owned(),
        });
    }
    if n < h.len() {
        return Err(truncated("the 128-byte header"));
    }
    let big = match &h[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => {
            return Err(MatError::ByteOrder {
                found: String::from_utf8_lossy(other).into_owned(),
            })
        }
    };
    let version = if big {
        u16::from_be_bytes([h[124], h[125]])
    } else {
        u16::from_le_bytes([h[124], h[125]])
    };
    match version {
        0x0100 => Ok(big),
        0x0200 => Err(MatError::V73),
        version => Err(MatError::Version { version }),
    }
}

/// A data element's tag: its type, its byte count and, in the small format, its data.
struct Tag {
    ty: u32,
    len: u32,
    small: Option<[u8; 4]>,
}

/// Reads a tag; `None` at a clean end of the stream when `eof_ok`.
fn read_tag(
    r: &mut impl Read,
    big: bool,
    what: &str,
    eof_ok: bool,
) -> Result<Option<Tag>, MatError> {
    let mut b = [0u8; 8];
    let n = fill(r, &mut b, what)?;
    if n == 0 && eof_ok {
        return Ok(None);
    }
    if n < b.len() {
        return Err(truncated(what));
    }
    let first = word(&b[0..4], big);
    // The small format packs the byte count into the upper half of the first word and the
    // data (at most 4 bytes) into the second.
    if first >> 16 != 0 {
        let len = first >> 16;
        if len > 4 {
            return Err(malformed(
                what,
                format!("a small element of {len} bytes (at most 4)"),
            ));
        }
        return Ok(Some(Tag {
            ty: first & 0xffff,
            len,
            small: Some([b[4], b[5], b[6], b[7]]),
        }));
    }
    Ok(Some(Tag {
        ty: first,
        len: word(&b[4..8], big),
        small: None,
    }))
}

/// Reads one sub-element of an array of at most `max` bytes, and its padding.
fn read_sub(
    r: &mut impl Read,
    big: bool,
    what: &str,
    max: u64,
) -> Result<(u32, Vec<u8>), MatError> {
    let Some(tag) = read_tag(r, big, what, false)? else {
        return Err(truncated(what));
    };
    if let Some(small) = tag.small {
        return Ok((tag.ty, small[..tag.len as usize].to_vec()));
    }
    let len = u64::from(tag.len);
    if len > max {
        return Err(malformed(
            what,
            format!("{len} bytes, more than the {max} it can hold"),
        ));
    }
    // The buffer grows with the bytes actually there, so a short file that declares a large
    // array costs no more memory than its contents.
    let mut bytes = Vec::with_capacity(len.min(INITIAL_CAPACITY) as usize);
    r.by_ref()
        .take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(e, what))?;
    if (bytes.len() as u64) < len {
        return Err(truncated(what));
    }
    // The last sub-element of a compressed stream may end without its padding.
    let pad = (8 - len % 8) % 8;
    let mut padding = [0u8; 8];
    fill(r, &mut padding[..pad as usize], what)?;
    Ok((tag.ty, bytes))
}

/// Reads the sub-elements of an array; returns it with its index in `wanted` when wanted, or
/// `None` (leaving the rest unread) when not.
fn read_matrix(
    r: &mut impl Read,
    big: bool,
    wanted: &[Wanted<'_>],
    what: &str,
) -> Result<Option<(usize, Array)>, MatError> {
    let part = |p: &str| format!("the {p} of {what}");
    let (ty, flags) = read_sub(r, big, &part("array flags"), 16)?;
    if ty != MI_UINT32 || flags.len() != 8 {
        return Err(malformed(
            &part("array flags"),
            format!(
                "type {ty} of {} bytes (expected miUINT32, 8 bytes)",
                flags.len()
            ),
        ));
    }
    let flags = word(&flags[0..4], big);
    let (ty, dims) = read_sub(r, big, &part("dimensions"), 4 * MAX_DIMS)?;
    if ty != MI_INT32 || dims.len() < 8 || dims.len() % 4 != 0 {
        return Err(malformed(
            &part("dimensions"),
            format!(
                "type {ty} of {} bytes (expected miINT32, at least 2 dimensions)",
                dims.len()
            ),
        ));
    }
    let dims: Vec<i32> = dims.chunks_exact(4).map(|c| word(c, big) as i32).collect();
    let (ty, name) = read_sub(r, big, &part("array name"), MAX_NAME)?;
    if ty != MI_INT8 {
        return Err(malformed(
            &part("array name"),
            format!("type {ty} (expected miINT8)"),
        ));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let Some(index) = wanted.iter().position(|w| w.name == name) else {
        return Ok(None);
    };
    let class = Class::from_byte((flags & 0xff) as u8).map_err(|what| MatError::NotNumeric {
        name: name.clone(),
        what,
    })?;
    if flags & 0x0800 != 0 {
        return Err(MatError::NotNumeric {
            name,
            what: "complex",
        });
    }
    if let Some(d) = dims.iter().find(|&&d| d < 0) {
        return Err(malformed(
            &part("dimensions"),
            format!("a negative dimension {d}"),
        ));
    }
    let elements: u128 = dims.iter().map(|&d| d as u128).product();
    let limit = wanted[index].max_elements;
    if elements > u128::from(limit) {
        return Err(MatError::TooLarge {
            name,
            elements,
            limit,
        });
    }
    let data_what = format!("the data of `{name}`");
    let (ty, bytes) = read_sub(r, big, &data_what, elements as u64 * 8)?;
    let Some(width) = width(ty) else {
        return Err(malformed(
            &data_what,
            format!("type {ty}, not a numeric type"),
        ));
    };
    if bytes.len() as u128 != elements * width as u128 {
        return Err(malformed(
            &data_what,
            format!(
                "{} bytes for {elements} elements of {width} bytes",
                bytes.len()
            ),
        ));
    }
    let data = if ty == MI_UINT8 {
        Data::Bytes(bytes)
    } else {
        Data::Values(
            bytes
                .chunks_exact(width)
                .map(|c| value(ty, c, big))
                .collect(),
        )
    };
    let array = Array {
        class,
        dims: dims.iter().map(|&d| d as usize).collect(),
        data,
    };
    Ok(Some((index, array)))
}

/// Bytes per value of a numeric storage type (`miINT8` .. `miUINT64`), `None` for others.
fn width(ty: u32) -> Option<usize> {
    match ty {
        1 | 2 => Some(1),
        3 | 4 => Some(2),
        5..=7 => Some(4),
        9 | 12 | 13 => Some(8),
        _ => None,
    }
}

/// One value of storage type `ty` (whose [`width`] is `b.len()`), widened to `f64`.
fn value(ty: u32, b: &[u8], big: bool) -> f64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    if big {
        a[..b.len()].reverse();
    }
    match ty {
        1 => f64::from(a[0] as i8),
        2 => f64::from(a[0]),
        3 => f64::from(i16::from_le_bytes([a[0], a[1]])),
        4 => f64::from(u16::from_le_bytes([a[0], a[1]])),
        5 => f64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        6 => f64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        7 => f64::from(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        9 => f64::from_le_bytes(a),
        12 => i64::from_le_bytes(a) as f64,
        _ => u64::from_le_bytes(a) as f64,
    }
}

/// A 4-byte word in the file's byte order.
fn word(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<usize, MatError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, what)),
        }
    }
    Ok(n)
}

/// Reads what is left of `element`; the file must hold all of it.
fn skip<R: Read>(element: &mut io::Take<R>, what: &str) -> Result<(), MatError> {
    io::copy(element, &mut io::sink()).map_err(|e| io_error(e, what))?;
    if element.limit() > 0 {
        return Err(truncated(what));
    }
    Ok(())
}

/// Skips the padding after a plain element of `len` bytes (absent at the end of the file).
fn skip_padding(r: &mut impl Read, len: u64) -> Result<(), MatError> {
    let mut padding = [0u8; 8];
    fill(r, &mut padding[..((8 - len % 8) % 8) as usize], "padding")?;
    Ok(())
}

/// An I/O error while reading `what`: corrupt zlib data is [`MatError::Inflate`].
fn io_error(e: io::Error, what: &str) -> MatError {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => MatError::Inflate {
            what: what.to_string(),
            source: e,
        },
        io::ErrorKind::UnexpectedEof => truncated(what),
        _ => MatError::Io(e),
    }
}

fn truncated(what: &str) -> MatError {
    MatError::Truncated {
        what: what.to_string(),
    }
}

fn malformed(what: &str, reason: String) -> MatError {
    MatError::Malformed {
        what: what.to_string(),
        reason,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write as _;

    /// How [`write`] stores an array.
    #[derive(Debug, Clone)]
    pub(crate) struct Var<'a> {
        pub name: &'a str,
        /// The array-flags class byte (6 double, 9 uint8, 1 cell, ...).
        pub class: u8,
        pub dims: Vec<i32>,
        /// The storage type (`miUINT8` = 2, `miDOUBLE` = 9, ...) and its bytes, little-endian.
        pub ty: u32,
        pub bytes: Vec<u8>,
    }

    impl<'a> Var<'a> {
        /// A `uint8` array stored as `miUINT8`.
        pub(crate) fn uint8(name: &'a str, dims: &[i32], bytes: Vec<u8>) -> Self {
            Var {
                name,
                class: 9,
                dims: dims.to_vec(),
                ty: MI_UINT8,
                bytes,
            }
        }

        /// A `double` array stored as `miDOUBLE`.
        pub(crate) fn double(name: &'a str, dims: &[i32], values: &[f64]) -> Self {
            Var {
                name,
                class: 6,
                dims: dims.to_vec(),
                ty: 9,
                bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            }
        }
    }

    /// A sub-element (tag, data, padding), little-endian, in the small format when it fits.
    fn sub(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        if data.len() <= 4 && !data.is_empty() {
            v.extend((ty | (data.len() as u32) << 16).to_le_bytes());
            let mut d = [0u8; 4];
            d[..data.len()].copy_from_slice(data);
            v.extend(d);
            return v;
        }
        v.extend(ty.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        v.resize(v.len() + (8 - data.len() % 8) % 8, 0);
        v
    }

    /// The `miMATRIX` element of `var`, tag included.
    pub(crate) fn matrix(var: &Var<'_>) -> Vec<u8> {
        let mut body = sub(MI_UINT32, &[var.class, 0, 0, 0, 0, 0, 0, 0]);
        let dims: Vec<u8> = var.dims.iter().flat_map(|d| d.to_le_bytes()).collect();
        body.extend(sub(MI_INT32, &dims));
        body.extend(sub(MI_INT8, var.name.as_bytes()));
        body.extend(sub(var.ty, &var.bytes));
        let mut v = MI_MATRIX.to_le_bytes().to_vec();
        v.extend((body.len() as u32).to_le_bytes());
        v.extend(body);
        v
    }

    /// A little-endian level-5 MAT-file of `vars`, each compressed (as MATLAB's `-v7` and
    /// `savemat(..., do_compression=True)` write them) or not.
    pub(crate) fn write(vars: &[Var<'_>], compressed: bool) -> Vec<u8> {
        let mut v = header(0x0100, *b"IM");
        for var in vars {
            let m = matrix(var);
            if compressed {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                z.write_all(&m).expect("zlib");
                let z = z.finish().expect("zlib");
                v.extend(MI_COMPRESSED.to_le_bytes());
                v.extend((z.len() as u32).to_le_bytes());
                v.extend(z);
            } else {
                v.extend(m);
            }
        }
        v
    }

    fn header(version: u16, order: [u8; 2]) -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, written by runner's tests".to_vec();
        h.resize(124, b' ');
        h.extend(version.to_le_bytes());
        h.extend(order);
        h
    }

    fn want(name: &str) -> Wanted<'_> {
        Wanted {
            name,
            max_elements: 1 << 20,
        }
    }

    fn read(bytes: &[u8], names: &[&str]) -> Result<Vec<Array>, MatError> {
        let wanted: Vec<Wanted<'_>> = names.iter().map(|n| want(n)).collect();
        read_arrays_from(bytes, &wanted)
    }

    #[test]
    fn reads_plain_and_compressed_arrays_and_skips_others() {
        let x: Vec<u8> = (0..24).collect();
        let vars = [
            Var::uint8("X", &[2, 3, 4], x.clone()),
            Var {
                name: "junk",
                class: 1,
                dims: vec![1, 1],
                ty: MI_UINT8,
                bytes: vec![1, 2, 3, 4, 5],
            },
            Var::double("y", &[3, 1], &[1.0, 10.0, 7.0]),
            Var {
                // A double array stored in a narrower type, as MATLAB does.
                name: "z",
                class: 6,
                dims: vec![1, 2],
                ty: 3,
                bytes: [-2i16, 300].iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
        ];
        for compressed in [false, true] {
            let file = write(&vars, compressed);
            let got = read(&file, &["y", "X", "z"]).expect("reads");
            assert_eq!(got[0].class, Class::Double, "{compressed}");
            assert_eq!(got[0].dims, [3, 1]);
            assert_eq!(got[0].data, Data::Values(vec![1.0, 10.0, 7.0]));
            assert_eq!(got[1].class, Class::UInt8);
            assert_eq!(got[1].dims, [2, 3, 4]);
            assert_eq!(got[1].data, Data::Bytes(x.clone()));
            assert_eq!(got[2].data, Data::Values(vec![-2.0, 300.0]));
        }
    }

    #[test]
    fn big_endian_files_are_read() {
        let mut file = header(0x0100, *b"MI");
        file[124..126].copy_from_slice(&0x0100u16.to_be_bytes());
        // miMATRIX of a 1x2 uint8 array `a` = [7, 9], every word big-endian.
        let mut body = Vec::new();
        body.extend(MI_UINT32.to_be_bytes());
        body.extend(8u32.to_be_bytes());
        body.extend(9u32.to_be_bytes());
        body.extend(0u32.to_be_bytes());
        body.extend(MI_INT32.to_be_bytes());
        body.extend(8u32.to_be_bytes());
        body.extend(1i32.to_be_bytes());
        body.extend(2i32.to_be_bytes());
        body.extend((MI_INT8 | 1 << 16).to_be_bytes());
        body.extend([b'a', 0, 0, 0]);
        body.extend((MI_UINT8 | 2 << 16).to_be_bytes());
        body.extend([7, 9, 0, 0]);
        file.extend(MI_MATRIX.to_be_bytes());
        file.extend((body.len() as u32).to_be_bytes());
        file.extend(body);
        let got = read(&file, &["a"]).expect("reads");
        assert_eq!(got[0].dims, [1, 2]);
        assert_eq!(got[0].data, Data::Bytes(vec![7, 9]));
    }

    #[test]
    fn every_malformed_file_is_a_named_error() {
        let good = [
            Var::uint8("X", &[2, 4], (1..=8).collect()),
            Var::double("y", &[4, 1], &[1.0, 2.0, 3.0, 4.0]),
        ];
        let plain = write(&good, false);
        let packed = write(&good, true);
        let mut v73 = header(0x0200, *b"IM");
        v73[..19].copy_from_slice(b"MATLAB 7.3 MAT-file");
        let mut bad_order = plain.clone();
        bad_order[126..128].copy_from_slice(b"XX");
        let mut bad_zlib = packed.clone();
        bad_zlib[136..146].fill(0xAB);
        let mut huge = plain.clone();
        // The first dimension of `X` (header 128 + tag 8 + flags 16 + dims tag 8).
        huge[160..164].copy_from_slice(&i32::MAX.to_le_bytes());
        let mut negative = plain.clone();
        negative[160..164].copy_from_slice(&(-1i32).to_le_bytes());
        let cases: Vec<(Vec<u8>, &[&str], &str)> = vec![
            (
                b"\x1f\x8b not a mat file".to_vec(),
                &["X"],
                "not a MAT-file",
            ),
            (vec![], &["X"], "not a MAT-file"),
            (
                plain[..100].to_vec(),
                &["X"],
                "ends inside the 128-byte header",
            ),
            (v73, &["X"], "v7.3 (HDF5)"),
            (
                header(0x0300, *b"IM"),
                &["X"],
                "unknown MAT-file version 0x0300",
            ),
            (bad_order, &["X"], "byte-order mark \"XX\""),
            (plain[..132].to_vec(), &["X"], "ends inside data element 0"),
            (plain[..190].to_vec(), &["X"], "ends inside the data of `X`"),
            (packed[..150].to_vec(), &["X"], "truncated"),
            (
                bad_zlib,
                &["X"],
                "corrupt compressed data in compressed data element 0",
            ),
            (huge, &["X"], "variable `X` holds 8589934588 elements"),
            (negative, &["X"], "a negative dimension -1"),
            (plain.clone(), &["X", "w"], "no variable `w`"),
            (
                write(
                    &[Var {
                        class: 4,
                        ..good[0].clone()
                    }],
                    false,
                ),
                &["X"],
                "variable `X` is a character array",
            ),
            (
                write(
                    &[Var {
                        ty: 14,
                        ..good[0].clone()
                    }],
                    false,
                ),
                &["X"],
                "type 14, not a numeric type",
            ),
            (
                write(
                    &[Var {
                        bytes: vec![1, 2, 3],
                        ..good[0].clone()
                    }],
                    true,
                ),
                &["X"],
                "3 bytes for 8 elements of 1 bytes",
            ),
        ];
        for (bytes, names, needle) in cases {
            let err = read(&bytes, names).expect_err(needle);
            let text = err.to_string();
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }

    #[test]
    fn a_compressed_bomb_is_refused_before_it_is_inflated() {
        // 64 MiB of zeros declared as X: refused by its element count, after inflating only
        // the array's header.
        let var = Var::uint8("X", &[8192, 8192], vec![0; 8192 * 8192]);
        let file = write(&[var], true);
        assert!(file.len() < 1 << 20, "{}", file.len());
        let wanted = [Wanted {
            name: "X",
            max_elements: 1000,
        }];
        let err = read_arrays_from(&file[..], &wanted).expect_err("too large");
        assert!(
            matches!(
                err,
                MatError::TooLarge {
                    elements: 67108864,
                    limit: 1000,
                    ..
                }
            ),
            "{err}"
        );
    }
}
