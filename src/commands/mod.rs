//! The commands of the `sharpsweep` binary, each one library function that `main.rs`
//! calls with parsed arguments: `sweep` lives in [`crate::sweep`]; `run` ([`run`]), the
//! file commands `analyze`, `plot`, `inspect` ([`files`]) and the dry run are here.

pub mod files;
pub mod run;

pub use files::{analyze_file, export, inspect_file, plot_file, CommandError};
pub use run::{run_single, RunPoint, SingleRunError};

use crate::config::{Config, ConfigError};
use crate::sweep::grid;
use std::path::Path;

/// `sharpsweep sweep --dry-run`: the size of the grid and the cost model's estimate.
pub fn dry_run(config: &Path, overrides: &[String]) -> Result<String, ConfigError> {
    let (cfg, _) = Config::load(config, overrides)?;
    let keys = grid::expand(&cfg);
    Ok(format!(
        "{} runs; estimated {:.2} core-hours at 100 GFLOP/s per core\n",
        keys.len(),
        grid::core_hours(&cfg, 100.0)
    ))
}
