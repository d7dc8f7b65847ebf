//! MIME type detection for paste content, in the reference's order:
//! magic bytes, then an explicit non-generic `Content-Type`, then UTF-8 text,
//! then `application/octet-stream`.
//!
//! Never trust the client for what magic bytes can tell: a PNG is `image/png`
//! whatever the header says. Text-like magic (HTML, XML, scripts) is ignored,
//! so markup pasted as text is served as `text/plain`.

use std::sync::OnceLock;

use infer::{Infer, MatcherType};

pub const TEXT_PLAIN: &str = "text/plain";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Content types that say nothing about the content: curl's default for `-d`
/// and `--data-binary`, the generic binary type, plain text, form uploads.
const GENERIC: &[&str] = &[
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// The longest declared type we store; longer ones are treated as absent.
const MAX_DECLARED_LEN: usize = 127;

fn matchers() -> &'static Infer {
    static INFER: OnceLock<Infer> = OnceLock::new();
    INFER.get_or_init(|| {
        let mut infer = Infer::new();
        // `infer` knows WebAssembly core modules only; components (layer 1) are pastes too.
        infer.add("application/wasm", "wasm", is_wasm_component);
        infer
    })
}

fn is_wasm_component(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[..4] == *b"\0asm" && buf[6..8] == [0x01, 0x00]
}

/// The MIME type to store for `content`, given the request's `Content-Type`.
pub fn detect(content: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = matchers().get(content)
        && kind.matcher_type() != MatcherType::Text
        && kind.mime_type() != OCTET_STREAM
    {
        return kind.mime_type().to_owned();
    }
    if let Some(declared) = declared.and_then(normalize_declared) {
        return declared;
    }
    if std::str::from_utf8(content).is_ok() {
        TEXT_PLAIN.to_owned()
    } else {
        OCTET_STREAM.to_owned()
    }
}

/// `type/subtype` from a `Content-Type` value, lowercased, parameters dropped;
/// `None` if it is generic or not a well-formed media type.
fn normalize_declared(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (ty, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(ty) || !token(sub) || essence.len() > MAX_DECLARED_LEN {
        return None;
    }
    if GENERIC.contains(&essence.as_str()) {
        return None;
    }
    Some(essence)
}

/// Whether raw content is served inline (images and text) or as an attachment.
pub fn is_inline(mime: &str) -> bool {
    mime.starts_with("image/") || mime.starts_with("text/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(prefix: &[u8], len: usize) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.resize(len.max(prefix.len()), 0);
        v
    }

    #[test]
    fn every_format_family_of_the_reference_is_recognized() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x89PNG\r\n\x1a\n", "image/png"),
            (b"\xff\xd8\xff\xe0", "image/jpeg"),
            (b"GIF89a", "image/gif"),
            (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
            (b"BM", "image/bmp"),
            (b"II*\0", "image/tiff"),
            (b"\0\0\x01\0", "image/vnd.microsoft.icon"),
            (b"\0\0\0\x18ftypmp42", "video/mp4"),
            (b"FLV\x01", "video/x-flv"),
            (b"ID3", "audio/mpeg"),
            (b"fLaC", "audio/x-flac"),
            (b"OggS", "audio/ogg"),
            (b"%PDF-1.7", "application/pdf"),
            (b"MZ", "application/vnd.microsoft.portable-executable"),
            (b"\x7fELF", "application/x-executable"),
            (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
            (b"\0asm\x01\0\0\0", "application/wasm"),
            (b"\0asm\x0d\0\x01\0", "application/wasm"),
            (b"PK\x03\x04", "application/zip"),
            (b"\x1f\x8b\x08", "application/gzip"),
            (b"BZh", "application/x-bzip2"),
            (b"\xfd7zXZ\0", "application/x-xz"),
            (b"\x28\xb5\x2f\xfd", "application/zstd"),
            (b"\x04\x22\x4d\x18", "application/x-lz4"),
            (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
            (b"Rar!\x1a\x07\x00", "application/vnd.rar"),
            (b"SQLite format 3\0", "application/vnd.sqlite3"),
        ];
        for (magic, want) in cases {
            let content = sample(magic, 512);
            assert_eq!(detect(&content, None), *want, "magic {magic:x?}");
        }
    }

    #[test]
    fn matroska_webm_and_office_documents() {
        let mut mkv = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x88matroska".to_vec();
        mkv.resize(512, 0);
        assert_eq!(detect(&mkv, None), "video/x-matroska");
        let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm".to_vec();
        webm.resize(512, 0);
        assert_eq!(detect(&webm, None), "video/webm");
        // An OLE2 compound file that `infer` cannot classify further is still binary.
        let ole = sample(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 512);
        assert_ne!(detect(&ole, None), TEXT_PLAIN);
    }

    #[test]
    fn magic_bytes_beat_the_declared_type() {
        let png = sample(b"\x89PNG\r\n\x1a\n", 64);
        assert_eq!(detect(&png, Some("text/html")), "image/png");
    }

    #[test]
    fn declared_type_used_when_not_generic_and_well_formed() {
        assert_eq!(
            detect(b"print(1)", Some("Text/X-Python; charset=utf-8")),
            "text/x-python"
        );
        assert_eq!(detect(b"hello", Some("text/plain")), TEXT_PLAIN);
        assert_eq!(
            detect(b"hello", Some("application/x-www-form-urlencoded")),
            TEXT_PLAIN
        );
        assert_eq!(detect(b"hello", Some("not a type")), TEXT_PLAIN);
        assert_eq!(detect(b"hello", Some("text/\r\nx")), TEXT_PLAIN);
        assert_eq!(detect(b"hello", Some("")), TEXT_PLAIN);
    }

    #[test]
    fn utf8_is_text_and_anything_else_is_octet_stream() {
        assert_eq!(detect("héllo wörld".as_bytes(), None), TEXT_PLAIN);
        assert_eq!(detect(b"<html><script>x</script></html>", None), TEXT_PLAIN);
        assert_eq!(detect(&[0xff, 0xfe, 0x00, 0x81], None), OCTET_STREAM);
        assert_eq!(
            detect(&[0xc3], Some("application/octet-stream")),
            OCTET_STREAM
        );
    }

    #[test]
    fn inline_only_for_images_and_text() {
        assert!(is_inline("image/png"));
        assert!(is_inline("text/plain"));
        assert!(!is_inline("application/pdf"));
    }
}
