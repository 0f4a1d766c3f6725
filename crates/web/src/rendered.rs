//! Rendered images (PS3.18 §8.3.5 rendered and thumbnail resources, §9 WADO-URI): one frame
//! decoded, windowed, scaled and encoded as JPEG or PNG, for thumbnails and simple viewers.
//!
//! ## Bounded by one frame
//! A 2 GiB multi-frame instance is never loaded whole. The frame's bytes are located without
//! decoding anything ([`crate::frames::map`]: a slice of native pixel data, or the fragments of
//! encapsulated pixel data), read alone, and put into a one-frame object built from the
//! instance's header (read up to its Pixel Data, with only this frame's per-frame functional
//! groups). dicom-rs (`dicom-pixeldata`) decodes that object: native pixels, JPEG baseline,
//! extended and lossless, RLE, JPEG 2000 (pure Rust `openjp2`). JPEG-LS and video syntaxes
//! are refused with the reason (retrieve their frames or the instance instead).
//!
//! ## What the picture shows
//! * The **window** is the query's (`window=center,width,function`; WADO-URI `windowCenter`,
//!   `windowWidth`), else the header's first VOI LUT or window, else the frame's own range.
//!   The modality LUT (rescale) is applied first, so a CT window is in Hounsfield units.
//!   MONOCHROME1 is inverted; colour is converted to RGB.
//! * The **viewport** (`viewport=vw,vh[,sx,sy,sw,sh]`; WADO-URI `rows`, `columns`, `region`)
//!   crops (a negative `sw`/`sh` flips), then scales to fit inside `vw`×`vh`, keeping the aspect
//!   ratio. A thumbnail with no viewport fits in [`THUMBNAIL`]×[`THUMBNAIL`].
//! * Nothing is burnt into the image: `annotation` is accepted and ignored (a relay never
//!   draws a patient's name onto pixels it hands out).
//!
//! [`Rendering`] is parsed from the request alone and [`render`] works on a path: both are
//! tested without a server.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutFunction, VoiLutOption, WindowLevel};
use image::DynamicImage;

use crate::codestream;
use crate::frames::{self, FramesError};

/// A thumbnail with no viewport fits in this many pixels each way.
pub const THUMBNAIL: u32 = 256;
/// Largest output edge (a viewport asking for more is refused).
pub const MAX_EDGE: u32 = 16_384;
/// Largest frame rendered, in pixels (a 8k × 8k image): its decoded form is held in memory.
pub const MAX_PIXELS: u64 = 1 << 26;
/// Largest stored frame read, in bytes.
pub const MAX_FRAME_BYTES: u64 = 256 << 20;
/// JPEG quality when the request names none.
pub const DEFAULT_QUALITY: u8 = 90;

/// The image format of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    /// The format a media type names (`image/*` and `*/*`: JPEG).
    pub fn from_media_type(media: &str) -> Option<Format> {
        match media.trim().to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" | "image/*" | "*/*" => Some(Format::Jpeg),
            "image/png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// A window (VOI LUT function) asked for by the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiLutFunction,
}

/// A crop of the frame before scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Crop {
    /// PS3.18 `viewport` source rectangle in pixels: x, y, width, height; a negative width or
    /// height flips the image along that axis.
    Pixels { x: u32, y: u32, w: i64, h: i64 },
    /// WADO-URI `region`: x1, y1, x2, y2 as fractions of the image (0.0–1.0).
    Fraction { x1: f64, y1: f64, x2: f64, y2: f64 },
}

/// How to render: parsed from the request, before anything is read.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendering {
    pub format: Format,
    /// JPEG quality, 1–100.
    pub quality: u8,
    pub window: Option<Window>,
    /// Fit inside this many pixels (width, height).
    pub fit: Option<(u32, u32)>,
    /// Only ever scale down to fit (a thumbnail of a small image is the image).
    pub shrink_only: bool,
    pub crop: Option<Crop>,
}

/// Why an image is not rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    /// The request's parameters are wrong (400).
    #[error("{0}")]
    BadParameter(String),
    /// The request asks for a media type not served (406).
    #[error("rendered images are served as image/jpeg or image/png, not {0}")]
    NotAcceptable(String),
    #[error("the instance has no pixel data to render")]
    NoPixelData,
    #[error("frame {asked} does not exist: the instance has {frames} frame(s)")]
    NoSuchFrame { asked: u32, frames: u32 },
    /// The pixel data cannot be decoded here (406; the frames or the instance can still be
    /// retrieved as stored).
    #[error("the image cannot be rendered: {0}; retrieve the instance as stored instead")]
    Undecodable(String),
    #[error("the frame is too large to render ({0}); retrieve its frames instead")]
    TooLarge(String),
    #[error("the stored file cannot be read: {0}")]
    Read(String),
}

impl From<FramesError> for RenderError {
    fn from(e: FramesError) -> RenderError {
        match e {
            FramesError::NoPixelData => RenderError::NoPixelData,
            FramesError::NoSuchFrame { asked, frames } => {
                RenderError::NoSuchFrame { asked, frames }
            }
            FramesError::Deflated => {
                RenderError::Undecodable("its pixel data lies inside a deflated data set".into())
            }
            FramesError::Unsplittable(why) => RenderError::Undecodable(format!(
                "its pixel data cannot be split into frames ({why})"
            )),
            FramesError::Read(s) => RenderError::Read(s),
        }
    }
}

fn bad(text: impl Into<String>) -> RenderError {
    RenderError::BadParameter(text.into())
}

/// The format an `Accept` header (or the `accept` query parameter) asks for: the most
/// preferred of JPEG and PNG (`q` values honoured); JPEG when nothing is asked.
pub fn choose_format(accept: Option<&str>) -> Result<Format, RenderError> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Format::Jpeg);
    };
    let mut ranges: Vec<(f32, usize, &str)> = Vec::new();
    for (i, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 {
            ranges.push((q, i, media));
        }
    }
    // Highest q first; equal q keeps the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .iter()
        .find_map(|(_, _, m)| Format::from_media_type(m))
        .ok_or_else(|| RenderError::NotAcceptable(accept.to_string()))
}

fn number<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, RenderError> {
    text.trim()
        .parse()
        .map_err(|_| bad(format!("{what} must be a number, not {text:?}")))
}

fn function(name: &str) -> Result<VoiLutFunction, RenderError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "linear" => Ok(VoiLutFunction::Linear),
        "linear-exact" | "linear_exact" => Ok(VoiLutFunction::LinearExact),
        "sigmoid" => Ok(VoiLutFunction::Sigmoid),
        other => Err(bad(format!(
            "window function {other:?} is not one of linear, linear-exact, sigmoid"
        ))),
    }
}

fn window(center: f64, width: f64, function: VoiLutFunction) -> Result<Window, RenderError> {
    if !(center.is_finite() && width.is_finite() && width > 0.0) {
        return Err(bad("the window width must be above 0"));
    }
    Ok(Window {
        center,
        width,
        function,
    })
}

fn quality(text: &str) -> Result<u8, RenderError> {
    match number::<u32>("quality", text)? {
        q @ 1..=100 => Ok(q as u8),
        q => Err(bad(format!("quality must be 1 to 100, not {q}"))),
    }
}

fn edge(what: &str, text: &str) -> Result<u32, RenderError> {
    match number::<u32>(what, text)? {
        v @ 1..=MAX_EDGE => Ok(v),
        v => Err(bad(format!("{what} must be 1 to {MAX_EDGE}, not {v}"))),
    }
}

impl Rendering {
    /// A DICOMweb (PS3.18 §8.3.5) rendered or thumbnail request: `accept` (or the `Accept`
    /// header), `window=center,width[,function]`, `viewport=vw,vh[,sx,sy,sw,sh]`, `quality`.
    /// `annotation`, `iccprofile` and `charset` are accepted and ignored.
    pub fn from_query(
        params: &[(String, String)],
        accept_header: Option<&str>,
    ) -> Result<Rendering, RenderError> {
        let param = |name: &str| crate::wado::param(params, name);
        let format = choose_format(param("accept").or(accept_header))?;
        let quality = param("quality").map(quality).transpose()?;
        let window = match param("window") {
            None => None,
            Some(w) => {
                let v: Vec<&str> = w.split(',').collect();
                if !(2..=3).contains(&v.len()) {
                    return Err(bad(format!(
                        "window must be center,width,function (e.g. 40,400,linear), not {w:?}"
                    )));
                }
                let f = v.get(2).map(|f| function(f)).transpose()?;
                Some(window(
                    number("the window center", v[0])?,
                    number("the window width", v[1])?,
                    f.unwrap_or(VoiLutFunction::Linear),
                )?)
            }
        };
        let (fit, crop) = match param("viewport") {
            None => (None, None),
            Some(vp) => {
                let v: Vec<&str> = vp.split(',').collect();
                if v.len() != 2 && v.len() != 6 {
                    return Err(bad(format!(
                        "viewport must be vw,vh or vw,vh,sx,sy,sw,sh, not {vp:?}"
                    )));
                }
                let fit = (
                    edge("the viewport width", v[0])?,
                    edge("the viewport height", v[1])?,
                );
                let crop = if v.len() == 6 {
                    Some(Crop::Pixels {
                        x: number("sx", v[2])?,
                        y: number("sy", v[3])?,
                        w: number("sw", v[4])?,
                        h: number("sh", v[5])?,
                    })
                } else {
                    None
                };
                (Some(fit), crop)
            }
        };
        Ok(Rendering {
            format,
            quality: quality.unwrap_or(DEFAULT_QUALITY),
            window,
            fit,
            shrink_only: false,
            crop,
        })
    }

    /// A WADO-URI (PS3.18 §9) rendered request in `format`: `windowCenter` with
    /// `windowWidth`, `rows`, `columns`, `region=x1,y1,x2,y2`, `imageQuality`.
    pub fn from_wado_uri(
        params: &[(String, String)],
        format: Format,
    ) -> Result<Rendering, RenderError> {
        let param = |name: &str| crate::wado::param(params, name);
        let window = match (param("windowCenter"), param("windowWidth")) {
            (None, None) => None,
            (Some(c), Some(w)) => Some(window(
                number("windowCenter", c)?,
                number("windowWidth", w)?,
                VoiLutFunction::Linear,
            )?),
            _ => return Err(bad("windowCenter and windowWidth go together")),
        };
        let rows = param("rows").map(|r| edge("rows", r)).transpose()?;
        let columns = param("columns").map(|c| edge("columns", c)).transpose()?;
        let fit = match (columns, rows) {
            (None, None) => None,
            (c, r) => Some((c.unwrap_or(MAX_EDGE), r.unwrap_or(MAX_EDGE))),
        };
        let crop = match param("region") {
            None => None,
            Some(r) => {
                let v = r
                    .split(',')
                    .map(|x| number::<f64>("region", x))
                    .collect::<Result<Vec<f64>, _>>()?;
                match v[..] {
                    [x1, y1, x2, y2]
                        if (0.0..=1.0).contains(&x1)
                            && (0.0..=1.0).contains(&y1)
                            && x1 < x2
                            && y1 < y2
                            && x2 <= 1.0
                            && y2 <= 1.0 =>
                    {
                        Some(Crop::Fraction { x1, y1, x2, y2 })
                    }
                    _ => {
                        return Err(bad(format!(
                            "region must be x1,y1,x2,y2 with 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1, not {r:?}"
                        )))
                    }
                }
            }
        };
        Ok(Rendering {
            format,
            quality: param("imageQuality")
                .map(quality)
                .transpose()?
                .unwrap_or(DEFAULT_QUALITY),
            window,
            fit,
            shrink_only: false,
            crop,
        })
    }
}

/// Render frame `frame` (1-based) of the stored instance at `path`: the encoded image.
pub fn render(path: &Path, frame: u32, how: &Rendering) -> Result<Vec<u8>, RenderError> {
    let map = frames::map(path)?;
    let count = u32::try_from(map.frames.len()).unwrap_or(u32::MAX);
    if frame == 0 || frame > count {
        return Err(RenderError::NoSuchFrame {
            asked: frame,
            frames: count,
        });
    }
    let ranges = &map.frames[frame as usize - 1];
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    if total > MAX_FRAME_BYTES {
        return Err(RenderError::TooLarge(format!("{total} bytes")));
    }
    let mut obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| RenderError::Read(e.to_string()))?;
    let read_u32 = |tag| {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(0)
    };
    let (rows, columns, spp) = (
        read_u32(tags::ROWS),
        read_u32(tags::COLUMNS),
        read_u32(tags::SAMPLES_PER_PIXEL).max(1),
    );
    let bits = read_u32(tags::BITS_ALLOCATED);
    let pixels = u64::from(rows) * u64::from(columns);
    if pixels == 0 {
        return Err(RenderError::Undecodable(
            "Rows or Columns is missing or zero".into(),
        ));
    }
    if pixels * u64::from(spp) > MAX_PIXELS {
        return Err(RenderError::TooLarge(format!("{columns} × {rows} pixels")));
    }
    let mut file = std::fs::File::open(path).map_err(|e| RenderError::Read(e.to_string()))?;
    let mut pieces = Vec::with_capacity(ranges.len());
    for &(offset, len) in ranges {
        let mut buf = vec![
            0u8;
            usize::try_from(len)
                .map_err(|_| RenderError::TooLarge(format!("{len} bytes")))?
        ];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| RenderError::Read(e.to_string()))?;
        pieces.push(buf);
    }
    // A compressed frame's own header must describe what the DICOM header does, before a
    // decoder sizes anything from it (`codestream.rs`).
    if map.media_type != "application/octet-stream" {
        let first = pieces.first().map(Vec::as_slice).unwrap_or_default();
        codestream::check(
            codestream::family(&map.transfer_syntax),
            first,
            rows,
            columns,
        )
        .map_err(|e| RenderError::Undecodable(e.to_string()))?;
    }
    // One frame, with only its own per-frame functional groups.
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    let per_frame = obj
        .element_opt(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| {
            e.items()
                .map(|items| items.get(frame as usize - 1).cloned())
        });
    if let Some(item) = per_frame {
        obj.put(DataElement::new(
            tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(item.into_iter().collect::<Vec<_>>(), Length::UNDEFINED),
        ));
    }
    if map.media_type == "application/octet-stream" {
        let mut data = pieces.concat();
        if map.transfer_syntax == BIG_ENDIAN {
            swap_to_little_endian(&mut data, bits);
        }
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            if bits > 8 { VR::OW } else { VR::OB },
            PrimitiveValue::from(data),
        ));
        obj.meta_mut().transfer_syntax = EXPLICIT_LITTLE_ENDIAN.into();
    } else {
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(Vec::<u32>::new(), pieces),
        ));
    }
    // dicom-rs's decoders can panic on malformed data (an RLE segment too short, found by
    // fuzzing): that is one bad image, never a reason to take the thread down.
    let decoded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data()))
            .map_err(|_| RenderError::Undecodable("its pixel data is malformed".into()))?
            .map_err(|e| RenderError::Undecodable(chain(&e)))?;
    let voi = match how.window {
        Some(w) => VoiLutOption::CustomWithFunction(
            WindowLevel {
                center: w.center,
                width: w.width,
            },
            w.function,
        ),
        None => VoiLutOption::Default,
    };
    let image = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decoded
            .to_dynamic_image_with_options(0, &ConvertOptions::new().with_voi_lut(voi).force_8bit())
    }))
    .map_err(|_| RenderError::Undecodable("its pixel data is malformed".into()))?
    .map_err(|e| RenderError::Undecodable(chain(&e)))?;
    let image = crop(image, how.crop)?;
    let image = match how.fit {
        Some((w, h)) if how.shrink_only && image.width() <= w && image.height() <= h => image,
        f => fit(image, f),
    };
    encode(image, how.format, how.quality)
}

/// An error with its causes ("could not decode pixel data: unsupported …").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

const BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
const EXPLICIT_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Explicit VR Big Endian pixel data in little-endian order (samples of `bits` bits).
fn swap_to_little_endian(data: &mut [u8], bits: u32) {
    match bits {
        16 => data.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
        32 => data.chunks_exact_mut(4).for_each(|c| c.reverse()),
        _ => {}
    }
}

fn crop(image: DynamicImage, crop: Option<Crop>) -> Result<DynamicImage, RenderError> {
    let (width, height) = (image.width(), image.height());
    let Some(crop) = crop else {
        return Ok(image);
    };
    let (x, y, w, h, flip_x, flip_y) = match crop {
        Crop::Pixels { x, y, w, h } => {
            let (aw, ah) = (w.unsigned_abs(), h.unsigned_abs());
            // sw/sh of 0 (or absent) means "to the edge".
            let aw = if aw == 0 {
                u64::from(width.saturating_sub(x))
            } else {
                aw
            };
            let ah = if ah == 0 {
                u64::from(height.saturating_sub(y))
            } else {
                ah
            };
            (x, y, aw, ah, w < 0, h < 0)
        }
        Crop::Fraction { x1, y1, x2, y2 } => {
            let px = |f: f64, n: u32| (f * f64::from(n)).round() as u64;
            let (x, y) = (px(x1, width), px(y1, height));
            (
                x as u32,
                y as u32,
                (px(x2, width) - x).max(1),
                (px(y2, height) - y).max(1),
                false,
                false,
            )
        }
    };
    if x >= width || y >= height || w == 0 || h == 0 {
        return Err(bad(format!(
            "the source rectangle lies outside the {width} × {height} image"
        )));
    }
    let w = w.min(u64::from(width - x)) as u32;
    let h = h.min(u64::from(height - y)) as u32;
    let mut out = image.crop_imm(x, y, w, h);
    if flip_x {
        out = out.fliph();
    }
    if flip_y {
        out = out.flipv();
    }
    Ok(out)
}

/// Scaled to fit inside `fit`, keeping the aspect ratio.
fn fit(image: DynamicImage, fit: Option<(u32, u32)>) -> DynamicImage {
    match fit {
        Some((w, h)) if (w, h) != (image.width(), image.height()) => {
            image.resize(w, h, image::imageops::FilterType::Triangle)
        }
        _ => image,
    }
}

fn encode(image: DynamicImage, format: Format, quality: u8) -> Result<Vec<u8>, RenderError> {
    let image = match image {
        i @ (DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_)) => i,
        i if i.color().has_color() => DynamicImage::ImageRgb8(i.to_rgb8()),
        i => DynamicImage::ImageLuma8(i.to_luma8()),
    };
    let mut out = Vec::new();
    let done = match format {
        Format::Jpeg => image.write_with_encoder(
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality),
        ),
        Format::Png => image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)),
    };
    done.map_err(|e| RenderError::Undecodable(format!("encoding failed: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accept_picks_the_preferred_image_type() {
        assert_eq!(choose_format(None), Ok(Format::Jpeg));
        assert_eq!(choose_format(Some("image/png")), Ok(Format::Png));
        assert_eq!(
            choose_format(Some("image/png;q=0.5, image/jpeg")),
            Ok(Format::Jpeg)
        );
        assert_eq!(choose_format(Some("image/gif, image/png")), Ok(Format::Png));
        assert_eq!(choose_format(Some("*/*")), Ok(Format::Jpeg));
        assert_eq!(
            choose_format(Some("image/jpeg;q=0, image/png")),
            Ok(Format::Png)
        );
        assert!(matches!(
            choose_format(Some("image/gif")),
            Err(RenderError::NotAcceptable(_))
        ));
        assert!(matches!(
            choose_format(Some("video/mp4")),
            Err(RenderError::NotAcceptable(_))
        ));
    }

    #[test]
    fn query_parameters_are_read_as_ps3_18_says() {
        let r = Rendering::from_query(
            &q(&[
                ("window", "40,400,linear"),
                ("viewport", "128,96"),
                ("quality", "70"),
                ("annotation", "patient"),
            ]),
            Some("image/png"),
        )
        .unwrap();
        assert_eq!(r.format, Format::Png);
        assert_eq!(r.quality, 70);
        assert_eq!(
            r.window,
            Some(Window {
                center: 40.0,
                width: 400.0,
                function: VoiLutFunction::Linear
            })
        );
        assert_eq!(r.fit, Some((128, 96)));
        // The accept parameter wins over the header.
        let r = Rendering::from_query(&q(&[("accept", "image/jpeg")]), Some("image/png")).unwrap();
        assert_eq!(r.format, Format::Jpeg);
        let r = Rendering::from_query(&q(&[("viewport", "64,64,10,20,-100,50")]), None).unwrap();
        assert_eq!(
            r.crop,
            Some(Crop::Pixels {
                x: 10,
                y: 20,
                w: -100,
                h: 50
            })
        );
        for bad in [
            ("window", "40"),
            ("window", "40,0,linear"),
            ("window", "40,400,cubic"),
            ("window", "a,400,linear"),
            ("viewport", "0,10"),
            ("viewport", "10"),
            ("viewport", "99999,10"),
            ("quality", "0"),
            ("quality", "101"),
        ] {
            assert!(
                matches!(
                    Rendering::from_query(&q(&[bad]), None),
                    Err(RenderError::BadParameter(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn wado_uri_parameters_are_read_as_ps3_18_says() {
        let r = Rendering::from_wado_uri(
            &q(&[
                ("windowCenter", "-600"),
                ("windowWidth", "1500"),
                ("columns", "100"),
                ("region", "0,0,0.5,0.5"),
                ("imageQuality", "50"),
            ]),
            Format::Jpeg,
        )
        .unwrap();
        assert_eq!(
            r.window.map(|w| (w.center, w.width)),
            Some((-600.0, 1500.0))
        );
        assert_eq!(r.fit, Some((100, MAX_EDGE)));
        assert_eq!(r.quality, 50);
        assert!(matches!(r.crop, Some(Crop::Fraction { .. })));
        for bad in [
            vec![("windowCenter", "10")],
            vec![("rows", "0")],
            vec![("region", "0.5,0,0.2,1")],
            vec![("region", "0,0,1")],
            vec![("imageQuality", "500")],
        ] {
            assert!(
                Rendering::from_wado_uri(&q(&bad), Format::Png).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn crops_flip_and_stay_inside_the_image() {
        let image = DynamicImage::ImageLuma8(image::GrayImage::from_fn(10, 8, |x, _| {
            image::Luma([x as u8])
        }));
        let c = crop(
            image.clone(),
            Some(Crop::Pixels {
                x: 2,
                y: 0,
                w: -3,
                h: 100,
            }),
        )
        .unwrap();
        assert_eq!((c.width(), c.height()), (3, 8));
        // Flipped: the first column is the source's column 4.
        assert_eq!(c.to_luma8().get_pixel(0, 0)[0], 4);
        let c = crop(
            image.clone(),
            Some(Crop::Fraction {
                x1: 0.5,
                y1: 0.5,
                x2: 1.0,
                y2: 1.0,
            }),
        )
        .unwrap();
        assert_eq!((c.width(), c.height()), (5, 4));
        assert!(crop(
            image.clone(),
            Some(Crop::Pixels {
                x: 10,
                y: 0,
                w: 1,
                h: 1
            })
        )
        .is_err());
        let f = fit(image, Some((5, 100)));
        assert_eq!((f.width(), f.height()), (5, 4));
    }
}
