//! The HTTPS front door's parsers, fed what a client controls: QIDO-RS query parameters and
//! path UIDs, frame lists, `Accept`, `Content-Type` and `Range` headers, bearer tokens, a part's first bytes (file
//! meta) and attribute values encoded as DICOM JSON. Must never panic; a token it accepts must
//! be one this relay issued.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use yilian_store::QueryLevel;
use yilian_web::qido::{parse, Scope};
use yilian_web::token::Tokens;
use yilian_web::{dicom_json, frames, stow, wado};

fn tokens() -> &'static Tokens {
    static T: OnceLock<Tokens> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join("yilian-fuzz-web");
        Tokens::open(&dir).expect("a scratch folder for the token key")
    })
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let params: Vec<(String, String)> = text
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    let scope = Scope {
        study: Some(text.to_string()),
        series: None,
    };
    for level in [QueryLevel::Study, QueryLevel::Series, QueryLevel::Image] {
        let _ = parse(level, &Scope::default(), &params);
        let _ = parse(level, &scope, &params);
    }
    let _ = wado::wanted(Some(&text));
    let _ = stow::boundary(&text);
    let _ = wado::transfer_syntax(input);
    for n in [1, 3, u32::MAX] {
        if let Ok(list) = frames::parse_list(&text, n) {
            assert!(list.iter().all(|&f| f >= 1 && f <= n));
        }
    }
    let _ = wado::frames_wanted(Some(&text), "image/jpeg", "1.2.840.10008.1.2.4.50");
    for size in [0, 1, 1000, u64::MAX] {
        if let Some((start, len)) = wado::byte_range(&text, size) {
            assert!(len >= 1 && start.checked_add(len).is_some_and(|end| end <= size));
        }
    }
    for vr in [*b"PN", *b"IS", *b"US", *b"DA", *b"UI", *b"CS"] {
        let v = dicom_json::attribute(vr, &text);
        assert!(v.get("vr").is_some());
    }
    if let Ok(claims) = tokens().verify(&text, SystemTime::now()) {
        panic!("a token this relay never issued was accepted: {claims:?}");
    }
});
