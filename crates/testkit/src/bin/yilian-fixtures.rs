//! Write demo DICOM studies (synthetic, no real patient) to try `yilian send`:
//!
//! ```text
//! cargo run -p yilian-testkit --bin yilian-fixtures -- OUT_DIR [CT_SLICES]
//! ```
//!
//! OUT_DIR/ct (a CT series, 512×512), OUT_DIR/dx (one DX), OUT_DIR/us (an ultrasound cine).

use clap::Parser;
use std::path::PathBuf;
use yilian_testkit::{ct_series, dx_image, us_multiframe, StudySpec};

/// yilian-fixtures: write demo DICOM studies to try yilian with — synthetic images of
/// invented patients (no real patient data), made by code, the same every time.
///
/// It writes three studies under OUT_DIR, each routed differently by the example topology:
///
///   OUT_DIR/ct/   a CT series of CT_SLICES slices, 512 × 512, 16-bit (county radiology)
///   OUT_DIR/dx/   one digital radiograph, 2048 × 1536 (county radiology)
///   OUT_DIR/us/   one ultrasound cine, 40 frames of 640 × 480 (county ultrasound)
///
/// Then send them as a township device, e.g.:
///
///   yilian-fixtures demo && yilian send demo/
///
/// OUT_DIR is created if missing; files already there with the same names are overwritten.
#[derive(Parser, Debug)]
#[command(name = "yilian-fixtures", version, verbatim_doc_comment)]
struct Cli {
    /// Folder to write the studies into.
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
    /// Number of CT slices (each 512 KiB).
    #[arg(value_name = "CT_SLICES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    slices: u32,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let out = cli.out;
    let run = || -> std::io::Result<()> {
        for d in ["ct", "dx", "us"] {
            std::fs::create_dir_all(out.join(d))?;
        }
        let ct = ct_series(
            &out.join("ct"),
            &StudySpec::new("CT", 1),
            cli.slices as usize,
            512,
            512,
            1,
        )?;
        dx_image(
            &out.join("dx/DX.dcm"),
            &StudySpec::new("DX", 2),
            2048,
            1536,
            2,
        )?;
        us_multiframe(
            &out.join("us/US.dcm"),
            &StudySpec::new("US", 3),
            40,
            480,
            640,
            3,
        )?;
        println!(
            "wrote {} CT slices, 1 DX and 1 US cine under {}",
            ct.len(),
            out.display()
        );
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yilian-fixtures: cannot write under {}: {e}", out.display());
            std::process::ExitCode::FAILURE
        }
    }
}
