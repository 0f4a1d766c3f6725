//! Transfer syntaxes (PS3.5 §10 and Annex A): the ones a relay accepts and stores as received.
//!
//! [`STORAGE_PREFERENCE`] is the order in which an acceptor picks one transfer syntax among
//! those proposed in one presentation context (see [`crate::AcceptPolicy`]):
//! uncompressed first (Explicit before Implicit VR Little Endian, so a peer that can send either
//! sends the one whose VRs travel with the data), then lossless compressed syntaxes, then lossy
//! and video ones. A peer that proposes one compressed syntax alone (what storescu and pynetdicom
//! do for a compressed file) gets exactly that one: nothing is transcoded, and a relay never
//! asks a sender to compress lossily what it holds uncompressed.

/// How a transfer syntax encodes a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Native (uncompressed) pixel data, plain data set encoding.
    Native,
    /// The whole data set is deflated (RFC 1951) after its encoding.
    Deflated,
    /// Encapsulated (compressed) pixel data: JPEG family, JPEG-LS, JPEG 2000, HTJ2K, RLE.
    Encapsulated,
    /// Encapsulated video: MPEG-2, H.264, H.265.
    Video,
}

/// One transfer syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSyntax {
    /// Its UID.
    pub uid: &'static str,
    /// The standard's name.
    pub name: &'static str,
    /// How it encodes the data set.
    pub kind: Kind,
    /// Does it keep every pixel value?
    pub lossless: bool,
}

/// The transfer syntax with this UID, if known here.
pub fn get(uid: &str) -> Option<&'static TransferSyntax> {
    ALL.iter().find(|t| t.uid == uid)
}

/// Is `uid` Implicit or Explicit VR Little Endian (what `StoreScu` offers as alternatives)?
pub fn is_uncompressed_little_endian(uid: &str) -> bool {
    uid == IMPLICIT_VR_LITTLE_ENDIAN || uid == EXPLICIT_VR_LITTLE_ENDIAN
}

/// The acceptor's preference order over [`ALL`]: uncompressed little endian (Explicit first),
/// the other uncompressed encodings, lossless compressed, then lossy and video.
pub fn storage_preference() -> Vec<&'static str> {
    let mut order = vec![EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN];
    let rank = |t: &TransferSyntax| match (t.kind, t.lossless) {
        (Kind::Native | Kind::Deflated, _) => 0,
        (Kind::Encapsulated, true) => 1,
        (Kind::Encapsulated, false) => 2,
        (Kind::Video, _) => 3,
    };
    let mut rest: Vec<&TransferSyntax> = ALL
        .iter()
        .filter(|t| !is_uncompressed_little_endian(t.uid))
        .collect();
    rest.sort_by_key(|t| rank(t));
    order.extend(rest.iter().map(|t| t.uid));
    order
}

/// Alias kept short for [`storage_preference`] callers that want a static slice.
pub static STORAGE_PREFERENCE: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(storage_preference);

/// Implicit VR Little Endian.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Encapsulated Uncompressed Explicit VR Little Endian.
pub const ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.98";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian (retired).
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
/// JPEG Baseline (Process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG Extended (Process 2 and 4).
pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
/// JPEG Lossless, Non-Hierarchical (Process 14).
pub const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
/// JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1]).
pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
/// JPEG-LS Lossless Image Compression.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// JPEG-LS Lossy (Near-Lossless) Image Compression.
pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
/// JPEG 2000 Image Compression (Lossless Only).
pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
/// JPEG 2000 Image Compression.
pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
/// JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only).
pub const JPEG_2000_MC_LOSSLESS: &str = "1.2.840.10008.1.2.4.92";
/// JPEG 2000 Part 2 Multi-component Image Compression.
pub const JPEG_2000_MC: &str = "1.2.840.10008.1.2.4.93";
/// MPEG2 Main Profile / Main Level.
pub const MPEG2_MAIN_MAIN: &str = "1.2.840.10008.1.2.4.100";
/// Fragmentable MPEG2 Main Profile / Main Level.
pub const MPEG2_MAIN_MAIN_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.100.1";
/// MPEG2 Main Profile / High Level.
pub const MPEG2_MAIN_HIGH: &str = "1.2.840.10008.1.2.4.101";
/// Fragmentable MPEG2 Main Profile / High Level.
pub const MPEG2_MAIN_HIGH_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.101.1";
/// MPEG-4 AVC/H.264 High Profile / Level 4.1.
pub const MPEG4_HP41: &str = "1.2.840.10008.1.2.4.102";
/// Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1.
pub const MPEG4_HP41_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.102.1";
/// MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1.
pub const MPEG4_HP41_BD: &str = "1.2.840.10008.1.2.4.103";
/// Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1.
pub const MPEG4_HP41_BD_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.103.1";
/// MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video.
pub const MPEG4_HP42_2D: &str = "1.2.840.10008.1.2.4.104";
/// Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video.
pub const MPEG4_HP42_2D_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.104.1";
/// MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video.
pub const MPEG4_HP42_3D: &str = "1.2.840.10008.1.2.4.105";
/// Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video.
pub const MPEG4_HP42_3D_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.105.1";
/// MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2.
pub const MPEG4_HP42_STEREO: &str = "1.2.840.10008.1.2.4.106";
/// Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2.
pub const MPEG4_HP42_STEREO_FRAGMENTABLE: &str = "1.2.840.10008.1.2.4.106.1";
/// HEVC/H.265 Main Profile / Level 5.1.
pub const HEVC_MAIN: &str = "1.2.840.10008.1.2.4.107";
/// HEVC/H.265 Main 10 Profile / Level 5.1.
pub const HEVC_MAIN10: &str = "1.2.840.10008.1.2.4.108";
/// High-Throughput JPEG 2000 Image Compression (Lossless Only).
pub const HTJ2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.201";
/// High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only).
pub const HTJ2K_LOSSLESS_RPCL: &str = "1.2.840.10008.1.2.4.202";
/// High-Throughput JPEG 2000 Image Compression.
pub const HTJ2K: &str = "1.2.840.10008.1.2.4.203";
/// RLE Lossless.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Every transfer syntax known here, by UID.
pub const ALL: &[TransferSyntax] = &[
    TransferSyntax { uid: IMPLICIT_VR_LITTLE_ENDIAN, name: "Implicit VR Little Endian", kind: Kind::Native, lossless: true },
    TransferSyntax { uid: EXPLICIT_VR_LITTLE_ENDIAN, name: "Explicit VR Little Endian", kind: Kind::Native, lossless: true },
    TransferSyntax { uid: ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN, name: "Encapsulated Uncompressed Explicit VR Little Endian", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, name: "Deflated Explicit VR Little Endian", kind: Kind::Deflated, lossless: true },
    TransferSyntax { uid: EXPLICIT_VR_BIG_ENDIAN, name: "Explicit VR Big Endian (retired)", kind: Kind::Native, lossless: true },
    TransferSyntax { uid: JPEG_BASELINE, name: "JPEG Baseline (Process 1)", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: JPEG_EXTENDED, name: "JPEG Extended (Process 2 and 4)", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: JPEG_LOSSLESS, name: "JPEG Lossless, Non-Hierarchical (Process 14)", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: JPEG_LOSSLESS_SV1, name: "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: JPEG_LS_LOSSLESS, name: "JPEG-LS Lossless Image Compression", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: JPEG_LS_NEAR_LOSSLESS, name: "JPEG-LS Lossy (Near-Lossless) Image Compression", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: JPEG_2000_LOSSLESS, name: "JPEG 2000 Image Compression (Lossless Only)", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: JPEG_2000, name: "JPEG 2000 Image Compression", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: JPEG_2000_MC_LOSSLESS, name: "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: JPEG_2000_MC, name: "JPEG 2000 Part 2 Multi-component Image Compression", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: MPEG2_MAIN_MAIN, name: "MPEG2 Main Profile / Main Level", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG2_MAIN_MAIN_FRAGMENTABLE, name: "Fragmentable MPEG2 Main Profile / Main Level", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG2_MAIN_HIGH, name: "MPEG2 Main Profile / High Level", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG2_MAIN_HIGH_FRAGMENTABLE, name: "Fragmentable MPEG2 Main Profile / High Level", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP41, name: "MPEG-4 AVC/H.264 High Profile / Level 4.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP41_FRAGMENTABLE, name: "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP41_BD, name: "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP41_BD_FRAGMENTABLE, name: "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_2D, name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_2D_FRAGMENTABLE, name: "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_3D, name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_3D_FRAGMENTABLE, name: "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_STEREO, name: "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: MPEG4_HP42_STEREO_FRAGMENTABLE, name: "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: HEVC_MAIN, name: "HEVC/H.265 Main Profile / Level 5.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: HEVC_MAIN10, name: "HEVC/H.265 Main 10 Profile / Level 5.1", kind: Kind::Video, lossless: false },
    TransferSyntax { uid: HTJ2K_LOSSLESS, name: "High-Throughput JPEG 2000 Image Compression (Lossless Only)", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: HTJ2K_LOSSLESS_RPCL, name: "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", kind: Kind::Encapsulated, lossless: true },
    TransferSyntax { uid: HTJ2K, name: "High-Throughput JPEG 2000 Image Compression", kind: Kind::Encapsulated, lossless: false },
    TransferSyntax { uid: RLE_LOSSLESS, name: "RLE Lossless", kind: Kind::Encapsulated, lossless: true },
];
