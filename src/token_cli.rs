//! `yilian token`: bearer tokens for viewers (DICOMweb) — issue and revoke.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use yilian_relay::config::{ConfigFile, RelayConfig};
use yilian_route::{Role, Topology};
use yilian_web::token::Tokens;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a bearer token to an identity of the topology, for a DICOMweb viewer (OHIF,
    /// Weasis) that has no alliance certificate: it sends `Authorization: Bearer TOKEN` and
    /// sees exactly what is routed to that identity.
    ///
    /// Run it on the relay's machine, with the relay's config file (or the same --data): the
    /// token is signed with the key in the relay's data folder (web/token.key), and nothing
    /// else is kept. The token is the last line printed; its id (for `yilian token revoke`)
    /// and expiry are printed before it.
    ///
    ///   yilian token issue --identity county-radiology --ttl 8h --config relay.toml
    #[command(verbatim_doc_comment)]
    Issue(IssueArgs),
    /// Revoke a token by its id (printed by `issue`, and in the audit log of each request):
    /// the relay refuses it from the next request on.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct Where {
    /// The relay's configuration file (TOML): where its data folder and topology are.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The relay's data folder; overrides the config file.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The identity the bearer acts as (a reader, e.g. county-radiology; or a device that
    /// uploads by STOW-RS).
    #[arg(long, value_name = "NAME")]
    identity: String,
    /// How long the token is valid (e.g. 8h, 30d; at most 90 days).
    #[arg(long, value_name = "DURATION", default_value = "8h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    #[command(flatten)]
    at: Where,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The token's id (16 hex digits).
    id: String,
    #[command(flatten)]
    at: Where,
}

fn relay_config(at: &Where) -> Result<RelayConfig> {
    let (file, base) = match &at.config {
        Some(p) => (
            ConfigFile::load(p)?,
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => (ConfigFile::default(), PathBuf::from(".")),
    };
    let mut config = file.resolve(&base, crate::defaults::dev_relay_tls, Topology::example)?;
    if let Some(d) = &at.data {
        config.data_dir = d.clone();
    }
    Ok(config)
}

pub fn run(c: TokenCommand) -> Result<ExitCode> {
    match c {
        TokenCommand::Issue(a) => issue(a),
        TokenCommand::Revoke(a) => revoke(a),
    }
}

fn issue(a: IssueArgs) -> Result<ExitCode> {
    let config = relay_config(&a.at)?;
    let Some(id) = config.topology.identity(&a.identity) else {
        bail!(
            "{} is not an identity of this relay's topology; declare it as [[identity]] first (names: {})",
            a.identity,
            config
                .topology
                .identities()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if id.role == Role::Relay {
        bail!(
            "{} is a relay identity: relays use their certificates",
            id.name
        );
    }
    let tokens = Tokens::open(&config.data_dir)
        .with_context(|| format!("the relay's data folder {}", config.data_dir.display()))?;
    let (token, claims) = tokens.issue(&id.name, a.ttl, SystemTime::now())?;
    println!("identity: {} ({}, site {})", id.name, id.role, id.site);
    println!(
        "token id: {} (revoke with `yilian token revoke {}`)",
        claims.id, claims.id
    );
    println!(
        "expires:  in {} (unix time {})",
        humantime::format_duration(a.ttl),
        claims.expires
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    let config = relay_config(&a.at)?;
    Tokens::open(&config.data_dir)?.revoke(&a.id)?;
    println!("token {} is revoked", a.id);
    Ok(ExitCode::SUCCESS)
}
