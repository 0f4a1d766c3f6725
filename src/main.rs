//! `yilian`: the relay and its command-line clients. See `yilian --help`.

mod allocator;
mod cli;
mod defaults;
mod ecg_cli;
mod progress;
mod token_cli;

use anyhow::Result;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    if args.is_serve() {
        // Before the runtime starts its threads.
        allocator::limit_arenas();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("yilian: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let r: Result<std::process::ExitCode> = rt.block_on(cli::run(args));
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("yilian: error: {}", explain(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, leaving out a cause the message already quotes.
fn explain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
