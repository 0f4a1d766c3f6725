//! Rendered images: a stored file a device sent (any bytes) rendered with any query. The
//! input's first line is the query (`window=…&viewport=…&quality=…`), the rest the file.
//! Must never panic, and an image it renders must be a JPEG or PNG.
//!
//! dicom-rs's decoders can panic on malformed pixel data; `render` catches that (one bad
//! image). libfuzzer-sys's panic hook would abort even on a caught panic, so the default hook
//! is put back: a panic that escapes `render` still aborts (libfuzzer-sys catches it at the
//! top and reports a crash).
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use yilian_web::rendered::{render, Format, Rendering};

fn scratch() -> &'static std::path::Path {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        std::env::temp_dir().join(format!("yilian-fuzz-rendered-{}.dcm", std::process::id()))
    })
}

fuzz_target!(|input: &[u8]| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
    let (query, file) = match input.iter().position(|b| *b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&input[..0], input),
    };
    let query = String::from_utf8_lossy(query);
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    let Ok(how) = Rendering::from_query(&params, Some("image/png")) else {
        return;
    };
    let path = scratch();
    let Ok(mut f) = std::fs::File::create(path) else {
        return;
    };
    if f.write_all(file).is_err() {
        return;
    }
    drop(f);
    if let Ok(image) = render(path, 1, &how) {
        let magic: &[u8] = match how.format {
            Format::Png => b"\x89PNG",
            Format::Jpeg => b"\xff\xd8\xff",
        };
        assert!(image.starts_with(magic), "not a {:?}", how.format);
    }
});
