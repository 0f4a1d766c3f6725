//! Write demo DICOM studies (synthetic, no real patient) to try `yilian send`:
//!
//! ```text
//! cargo run -p yilian-testkit --bin yilian-fixtures -- OUT_DIR [CT_SLICES]
//! ```
//!
//! OUT_DIR/ct (a CT series, 512×512), OUT_DIR/dx (one DX), OUT_DIR/us (an ultrasound cine).

use std::path::PathBuf;
use yilian_testkit::{ct_series, dx_image, us_multiframe, StudySpec};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: yilian-fixtures OUT_DIR [CT_SLICES]");
        return std::process::ExitCode::from(2);
    };
    let slices: usize = match args.next().map(|s| s.parse()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("CT_SLICES must be a number");
            return std::process::ExitCode::from(2);
        }
    };
    let run = || -> std::io::Result<()> {
        for d in ["ct", "dx", "us"] {
            std::fs::create_dir_all(out.join(d))?;
        }
        let ct = ct_series(
            &out.join("ct"),
            &StudySpec::new("CT", 1),
            slices,
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
            eprintln!("yilian-fixtures: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
