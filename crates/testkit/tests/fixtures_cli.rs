//! `yilian-fixtures` on the command line: `--help` teaches and writes nothing; an unknown flag
//! or a bad slice count is refused (exit 2) and writes nothing; a good run writes the studies.

use std::process::Command;

fn fixtures(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_yilian-fixtures"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

#[test]
fn help_teaches_and_bad_arguments_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for help in ["--help", "-h"] {
        let out = fixtures(dir.path(), &[help]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{help}: {out:?}");
        assert!(
            text.contains("Usage: yilian-fixtures <OUT_DIR> [CT_SLICES]"),
            "{text}"
        );
        if help == "--help" {
            assert!(text.contains("yilian send"), "says what to do next: {text}");
        }
    }
    for bad in [&["--bogus"][..], &["demo", "many"], &["demo", "0"], &[]] {
        let out = fixtures(dir.path(), bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--help") || err.contains("Usage:"),
            "{bad:?}: {out:?}"
        );
    }
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    let out = fixtures(dir.path(), &["demo", "2"]);
    assert!(out.status.success(), "{out:?}");
    for (sub, n) in [("ct", 2), ("dx", 1), ("us", 1)] {
        assert_eq!(
            entries(&dir.path().join("demo").join(sub)).len(),
            n,
            "{sub}"
        );
    }
}
