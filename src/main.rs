//! The `sharpsweep` command line: parses arguments and calls the library.

use clap::{Parser, Subcommand, ValueEnum};
use sharpsweep::analysis::{AnalysisParams, FitAxis, PlotFormat, PlotOptions, SIZE_RANGE};
use sharpsweep::commands::{
    analyze_file, check_output_path, export, inspect_file, plot_file, run_single, watch_file,
    RunPoint, WatchOptions,
};
use sharpsweep::sweep::{self, drain, SweepOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Phase diagrams of early training dynamics (Kalra & Barkeshli, NeurIPS 2023) at cluster
/// scale: MLPs trained by SGD at η = c/λ₀ over a (c, depth, width, seed) grid, loss and
/// sharpness (top Hessian eigenvalue, exact HVPs + Lanczos) tracked every step, every
/// trajectory in one HDF5 file.
///
/// Exit status: 0 done; 1 error (the message names the file, key or rank); 2 bad usage;
/// 3 the sweep stopped early (signal or --deadline) with runs left: rerun with --resume.
///
/// Results file (HDF5, netCDF-compatible; README "The results file"): the variables below;
/// provenance attributes; `analyze` adds groups `analysis/*`. Open it with
/// `xarray.open_dataset(path, engine="h5netcdf")` or scripts/read_results.py.
#[derive(Parser)]
#[command(
    name = "sharpsweep",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    after_long_help = format!(
        "{}\n{}",
        sharpsweep::config::keys::summary_text(),
        sharpsweep::record::help_text()
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Svg,
}

#[derive(Clone, Copy, ValueEnum)]
enum XAxis {
    /// depth / width
    DepthOverWidth,
    /// 1 / width
    InverseWidth,
}

#[derive(clap::Args, Clone)]
struct AnalysisArgs {
    /// ε of the sharpness catapult criterion λ_t > (1+ε)λ₀ (stored with the analysis).
    /// Default: the `grid.eps_sharp` an adaptive search of the file resolved, else 0.
    #[arg(long)]
    eps_sharp: Option<f64>,
    /// Early window T: c_loss and c_sharp look at steps 1..=T.
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// Saturation constant K: λ_τ is read at τ = round(K/c), i.e. c·τ = K (runs of ≥ 20
    /// steps). Not `sharpness.k`, the number of eigenvalues.
    #[arg(long, value_name = "K", default_value_t = 200.0, alias = "k")]
    saturation_k: f64,
    #[command(flatten)]
    regimes: RegimeArgs,
}

/// The thresholds of the regime detection (README "Regimes of long runs").
#[derive(clap::Args, Clone)]
struct RegimeArgs {
    /// The transient ends once |Δλ/λ| per step stays below this…
    #[arg(long, default_value_t = 0.01)]
    transient_delta: f64,
    /// …over this many steps.
    #[arg(long, default_value_t = 10)]
    transient_window: usize,
    /// Progressive sharpening: a sustained rise of the smoothed λ by more than this
    /// fraction above its post-transient minimum.
    #[arg(long, default_value_t = 0.1)]
    sharpening_fraction: f64,
    /// Its onset: the last step before the rise within this fraction of the minimum.
    #[arg(long, default_value_t = 0.02)]
    sharpening_band: f64,
    /// λ is smoothed by a centered running mean over this many steps.
    #[arg(long, default_value_t = 20)]
    sharpening_window: usize,
    /// η·λ_t has reached the edge once it is at least (1 − this)·edge.
    #[arg(long, default_value_t = 0.05)]
    edge_tolerance: f64,
    /// Fraction of the measured steps (the last ones) averaged for the late level.
    #[arg(long, default_value_t = 0.1)]
    late_fraction: f64,
}

impl AnalysisArgs {
    /// The parameters for the results file `file`; an error names a flag out of range.
    fn params(&self, file: &std::path::Path) -> Result<AnalysisParams, String> {
        if let Some(e) = self.eps_sharp {
            if !(e.is_finite() && e >= 0.0) {
                return Err(format!("--eps-sharp {e}: must be finite and >= 0"));
            }
        }
        if self.window == 0 {
            return Err("--window 0: the early window must be at least 1 step".into());
        }
        let r = &self.regimes;
        let regimes = sharpsweep::analysis::RegimeParams {
            k: self.saturation_k,
            transient_delta: r.transient_delta,
            transient_window: r.transient_window,
            sharpening_fraction: r.sharpening_fraction,
            sharpening_band: r.sharpening_band,
            sharpening_window: r.sharpening_window,
            edge_tolerance: r.edge_tolerance,
            late_fraction: r.late_fraction,
            ..Default::default()
        };
        regimes.check()?;
        let (lazy_c, lazy_c_by_point) = sharpsweep::commands::default_lazy_c(file);
        Ok(AnalysisParams {
            eps_sharp: self
                .eps_sharp
                .unwrap_or_else(|| sharpsweep::commands::default_eps_sharp(file)),
            early_window: self.window,
            lazy_c,
            lazy_c_by_point,
            regimes,
            ..Default::default()
        })
    }
}

/// Most matmul threads per rank `--threads` accepts.
const MAX_THREADS: usize = 1024;

/// Checks a seconds flag (`--progress-every`, `watch --every`): finite and >= 0.
fn check_seconds(flag: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{flag} {v}: must be a finite number of seconds >= 0"
        ))
    }
}

/// The results path a sweep will write (`--out`, else the config's `output.path`; None when
/// the config cannot be read, which the sweep itself then reports), checked before the
/// sweep starts: not a directory, its directory exists, and no orphaned journal of
/// finished runs beside a missing file would be truncated.
fn check_sweep_out(
    config: &std::path::Path,
    sets: &[String],
    out: Option<&std::path::Path>,
    force: bool,
) -> Result<(), String> {
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => match sharpsweep::config::Config::load(config, sets) {
            Ok((cfg, _)) => cfg.output.path,
            Err(_) => return Ok(()),
        },
    };
    let flag = if out.is_some() {
        "--out"
    } else {
        "output.path"
    };
    let shown = path.display();
    if path.as_os_str().to_string_lossy().ends_with('/') && !path.is_dir() {
        return Err(format!(
            "{flag} {shown}: ends with '/', so it names a directory (and the directory does \
             not exist): give the results file's name, e.g. {}",
            path.join("results.h5").display()
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "{flag} {shown}: is a directory, not a results file: give a file name, e.g. {}",
            path.join("results.h5").display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!(
                "{flag} {shown}: the directory {} does not exist",
                dir.display()
            ));
        }
    }
    let journal = sharpsweep::store::journal_path(&path);
    // A journal of no run (a sweep killed before its first snapshot) loses nothing.
    let held = sharpsweep::store::journal_held_runs(&journal);
    if !force && !path.exists() && held != Some(0) {
        return Err(format!(
            "{flag} {shown}: the file does not exist but its journal {} does: it may hold \
             finished runs, which need the file to be resumed. Put the file back and rerun \
             with --resume; or, to start over and discard those runs, move the journal \
             aside or rerun with --force (instead of --resume)",
            journal.display()
        ));
    }
    Ok(())
}

#[derive(clap::Args)]
struct SweepArgs {
    /// TOML config (see configs/quickstart.toml and the README for every key).
    config: PathBuf,
    /// Results file (default: output.path of the config).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a config key, TOML value syntax: --set model.width=[128] --set train.steps=50
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Continue an existing results file (same config hash), running only what is not
    /// finished; creates the file when it does not exist yet.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Overwrite an existing results file.
    #[arg(long)]
    force: bool,
    /// Matmul threads per rank (ranks × threads ≤ cores; 1 to 1024).
    #[arg(long, default_value_t = 1, env = "SHARPSWEEP_THREADS")]
    threads: usize,
    /// Finish by this time and exit 3 (+90m, +2h, a Unix time, or YYYY-MM-DDTHH:MM:SSZ): no
    /// run starts that the measured run times say cannot finish before it. Default inside
    /// a Slurm job: SLURM_JOB_END_TIME less 120 s, when set.
    #[arg(long)]
    deadline: Option<String>,
    /// Seconds between progress lines when stderr is not a terminal (Slurm logs).
    #[arg(long, default_value_t = 10.0)]
    progress_every: f64,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Only print the grid size (for an adaptive search: a bound on its runs, next to the
    /// full grid), peak memory, and the cost-model estimate; run nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
struct PlotArgs {
    /// Results file.
    file: PathBuf,
    /// Directory for the figures.
    #[arg(long, default_value = "figures")]
    out_dir: PathBuf,
    /// Image format.
    #[arg(long, value_enum, default_value = "png")]
    format: Format,
    /// Abscissa of the phase diagram.
    #[arg(long, value_enum, default_value = "depth-over-width")]
    x_axis: XAxis,
    /// Image size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "1200x800")]
    size: String,
    #[command(flatten)]
    params: AnalysisArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML config.
    config: PathBuf,
    /// Learning-rate multiplier c (η = c/λ₀).
    #[arg(long)]
    c: f64,
    /// Depth (default: the config's first).
    #[arg(long)]
    depth: Option<u32>,
    /// Width (default: the config's first).
    #[arg(long)]
    width: Option<u32>,
    /// Init seed (default: the config's first).
    #[arg(long)]
    seed: Option<u64>,
    /// SGD seed (default: the init seed).
    #[arg(long)]
    sgd_seed: Option<u64>,
    /// Config overrides, as for sweep.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// Results file.
    file: PathBuf,
    #[command(flatten)]
    params: AnalysisArgs,
    /// Also write the per-(depth, width) table as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Also write the whole analysis as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Do not write the analysis group into the file.
    #[arg(long)]
    no_write: bool,
    /// Also print the regime markers of every run (long runs), not only their seed means.
    #[arg(long)]
    regime_runs: bool,
}

#[derive(clap::Args)]
struct WatchArgs {
    /// Results file.
    file: PathBuf,
    /// Seconds between two looks.
    #[arg(long, default_value_t = 10.0)]
    every: f64,
    /// Directory where the phase diagram is redrawn (none: text only).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Look once and exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    params: AnalysisArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run every (c, depth, width, seed) point of a config into one HDF5 results file.
    /// Under `mpirun -np N` or `srun` the ranks share the grid; without a launcher it runs
    /// in one process. A killed sweep keeps every finished run; `--resume` runs the rest.
    #[command(after_long_help = sharpsweep::config::keys::help_text())]
    Sweep(SweepArgs),
    /// Train one (c, depth, width, seed) run of a config and print its trajectory. With
    /// `grid.axes`, the config's own values of the axis keys are used (set them with --set).
    Run(RunArgs),
    /// Critical values (c_loss, c_sharp, c_max, c_barrier) per (depth, width, seed), seed
    /// means, phases, boundary fits and regimes; printed, and stored in the file's
    /// `analysis` group.
    Analyze(AnalyzeArgs),
    /// Figures: the phase diagram (one per point of `grid.axes`), loss and sharpness
    /// trajectories (with each c's edge line; a log step axis for long runs), the regimes
    /// of long runs (η·λ_t/edge against t and c·t, boundaries marked), λ_τ/λ₀ against c.
    Plot(PlotArgs),
    /// Follow a sweep: every few seconds, the runs finished so far (also those still in
    /// the journal of a running sweep), the critical-value table, and the phase diagram
    /// redrawn; ends when the sweep closes the file.
    Watch(WatchArgs),
    /// What a results file holds: grid, progress, provenance, history.
    Inspect {
        /// Results file.
        file: PathBuf,
        /// Also print the full config stored in the file.
        #[arg(long)]
        config: bool,
    },
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    // One write of the whole line: every rank of an MPI job may report the same error into
    // one log, and `eprintln!` writes piece by piece, so lines of several ranks would mix.
    use std::io::Write;
    let line = format!("sharpsweep: error: {e}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    ExitCode::from(1)
}

/// `sharpsweep sweep`: the dry run, or the sweep and its summary on rank 0.
/// The sweep's options from its flags, each checked: `--deadline` parsed, `--threads` in
/// 1..=MAX_THREADS, `--progress-every` a finite number of seconds. `--dry-run` is not an
/// option of the sweep (it runs nothing) and is dropped; the error names the flag.
impl TryFrom<SweepArgs> for SweepOptions {
    type Error = String;

    fn try_from(args: SweepArgs) -> Result<SweepOptions, String> {
        let deadline = args
            .deadline
            .as_deref()
            .map(drain::parse_deadline)
            .transpose()
            .map_err(|e| format!("--deadline: {e}"))?;
        let threads = args.threads;
        if threads == 0 || threads > MAX_THREADS {
            return Err(format!(
                "--threads {threads} (or SHARPSWEEP_THREADS): must be between 1 and {MAX_THREADS}"
            ));
        }
        check_seconds("--progress-every", args.progress_every)?;
        Ok(SweepOptions {
            config: args.config,
            overrides: args.sets,
            out: args.out,
            resume: args.resume,
            force: args.force,
            threads,
            deadline,
            progress_every: args.progress_every,
            quiet: args.quiet,
        })
    }
}

fn sweep_command(args: SweepArgs) -> ExitCode {
    if args.dry_run {
        return match sharpsweep::commands::dry_run(&args.config, &args.sets) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let opts = match SweepOptions::try_from(args) {
        Ok(opts) => opts,
        Err(e) => return fail(e),
    };
    // mpirun binds each rank to one core when np <= 2 (OpenMPI): several threads would then
    // share that core. The affinity mask says so; warn instead of running slowly unnoticed.
    let threads = opts.threads;
    // The process's threads are the rank's: its own passes (data loading included) and
    // faer's products share one pool of `--threads` threads.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .ok();
    if let Ok(allowed) = std::thread::available_parallelism() {
        if threads > allowed.get() {
            eprintln!(
                "warning: --threads {threads}, but this process may run on only {allowed} \
                 core(s) (its CPU affinity); under mpirun pass --bind-to none (or \
                 --map-by slot:PE={threads})"
            );
        }
    }
    if let Err(e) = check_sweep_out(
        &opts.config,
        &opts.overrides,
        opts.out.as_deref(),
        opts.force,
    ) {
        return fail(e);
    }
    match sweep::run_sweep(&opts) {
        Ok(s) if !s.is_root => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!(
                "sharpsweep: {} of {} runs finished ({} diverged, {} failed; {} run now) in {}",
                s.finished,
                s.total,
                s.diverged,
                s.failed,
                s.ran_now,
                s.path.display()
            );
            if s.busy.len() > 1 {
                let total: f64 = s.busy.iter().sum();
                eprintln!(
                    "sharpsweep: {:.1} s wall on {} ranks; busy {:.1} s in all; busiest/mean = {:.3}; parallel efficiency {:.1}%",
                    s.wall,
                    s.busy.len(),
                    total,
                    s.imbalance(),
                    100.0 * total / (s.wall * s.busy.len() as f64)
                );
            }
            if s.incomplete() {
                eprintln!("sharpsweep: incomplete: rerun the same command with --resume");
                ExitCode::from(drain::EXIT_INCOMPLETE as u8)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

/// `sharpsweep plot`: every figure of a results file.
fn plot_command(args: PlotArgs) -> ExitCode {
    let PlotArgs {
        file,
        out_dir,
        format,
        x_axis,
        size,
        params,
    } = args;
    let Some((w, h)) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
    else {
        return fail(format!(
            "--size {size:?}: expected WIDTHxHEIGHT, e.g. 1200x800"
        ));
    };
    if !SIZE_RANGE.contains(&w) || !SIZE_RANGE.contains(&h) {
        return fail(format!(
            "--size {size}: each side must be between {} and {} pixels",
            SIZE_RANGE.start(),
            SIZE_RANGE.end()
        ));
    }
    let params = match params.params(&file) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let opts = PlotOptions {
        format: match format {
            Format::Png => PlotFormat::Png,
            Format::Svg => PlotFormat::Svg,
        },
        size: (w, h),
        x_axis: match x_axis {
            XAxis::DepthOverWidth => FitAxis::DepthOverWidth,
            XAxis::InverseWidth => FitAxis::InverseWidth,
        },
    };
    match plot_file(&file, &out_dir, &params, &opts) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `sharpsweep run`: one run's trajectory, printed.
fn run_command(args: RunArgs) -> ExitCode {
    let RunArgs {
        config,
        c,
        depth,
        width,
        seed,
        sgd_seed,
        sets,
    } = args;
    let point = RunPoint {
        c,
        depth,
        width,
        seed,
        sgd_seed,
    };
    match run_single(&config, &sets, point) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `sharpsweep analyze`: the table printed, the analysis group written, the exports.
fn analyze_command(args: AnalyzeArgs) -> ExitCode {
    let AnalyzeArgs {
        file,
        params,
        csv,
        json,
        no_write,
        regime_runs,
    } = args;
    let params = match params.params(&file) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    // Refuse an export path that would overwrite the results file (or its side files)
    // before anything is written.
    for (flag, p) in [("--csv", &csv), ("--json", &json)] {
        if let Some(p) = p {
            if let Err(e) = check_output_path(&file, p, flag) {
                return fail(e);
            }
        }
    }
    let analysis = match analyze_file(&file, &params, !no_write) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    print!("{}", analysis.render(regime_runs));
    for (path, text) in [(csv, analysis.to_csv()), (json, analysis.to_json())] {
        if let Some(p) = path {
            if let Err(e) = export(&p, &text) {
                return fail(e);
            }
            eprintln!("sharpsweep: wrote {}", p.display());
        }
    }
    ExitCode::SUCCESS
}

/// `sharpsweep watch`: the file followed until its sweep closes it.
fn watch_command(args: WatchArgs) -> ExitCode {
    let WatchArgs {
        file,
        every,
        out_dir,
        once,
        params,
    } = args;
    if let Err(e) = check_seconds("--every", every) {
        return fail(e);
    }
    let params = match params.params(&file) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let opts = WatchOptions {
        every,
        out_dir,
        once,
        params,
        plot: PlotOptions {
            format: PlotFormat::Png,
            size: (1200, 800),
            x_axis: FitAxis::DepthOverWidth,
        },
    };
    let clear = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !once;
    let shown = watch_file(&file, &opts, |text| {
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        println!("{text}");
    });
    match shown {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sweep(args) => sweep_command(args),
        Command::Run(args) => run_command(args),
        Command::Analyze(args) => analyze_command(args),
        Command::Plot(args) => plot_command(args),
        Command::Watch(args) => watch_command(args),
        Command::Inspect { file, config } => match inspect_file(&file, config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}
