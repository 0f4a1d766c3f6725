//! `yilian-linkem` and its commands answer `--help` (exit 0) and refuse an unknown flag (exit
//! 2, pointing to `--help`) without starting anything.

use std::process::Command;

#[test]
fn every_command_teaches_with_help_and_refuses_unknown_flags() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_yilian-linkem"))
            .args(args)
            .output()
            .unwrap()
    };
    for command in [&[][..], &["udp"], &["netns"], &["probe"]] {
        let help = run(&[command, &["--help"]].concat());
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{command:?}: {help:?}");
        assert!(text.contains("Usage: yilian-linkem"), "{command:?}: {text}");
        let bad = run(&[command, &["--no-such-flag"]].concat());
        assert_eq!(bad.status.code(), Some(2), "{command:?}: {bad:?}");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--help"));
    }
}
