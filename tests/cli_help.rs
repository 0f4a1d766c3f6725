//! Every command of `yilian` (and each subcommand's own subcommands) answers `--help` with its
//! usage and exit 0, and refuses an unknown flag with exit 2 and a pointer to `--help`,
//! without doing anything.

use std::process::Command;

fn yilian(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_yilian"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// The subcommands `--help` lists under "Commands:" (without `help`).
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_teaches_with_help_and_refuses_unknown_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = yilian(dir.path(), &args);
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(help.contains("Usage: yilian"), "{args:?}: {help}");
        seen += 1;
        for c in commands(&help) {
            let mut next = path.clone();
            next.push(c);
            todo.push(next);
        }
        let mut bad: Vec<&str> = path.iter().map(String::as_str).collect();
        bad.push("--no-such-flag");
        let out = yilian(dir.path(), &bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--help"),
            "{bad:?}: {out:?}"
        );
    }
    // yilian and its commands: serve, send, read, gateway, ecg (and its own), token (and its
    // own), certs (and its own).
    assert!(seen >= 12, "{seen} commands checked");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "asking for help wrote nothing"
    );
}
