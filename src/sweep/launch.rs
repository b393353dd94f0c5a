//! Starting a sweep process: MPI (only when a launcher started us), the world-size guard,
//! and the panic hook that turns a panic on one rank into the end of the whole job.

use super::SweepError;
use mpi::traits::*;

/// This process's place in the sweep: its MPI world (none without a launcher), rank and
/// world size. Keeps MPI initialised while alive.
pub(crate) struct Launch {
    /// The MPI universe (finalises MPI when dropped).
    universe: Option<mpi::environment::Universe>,
    /// This rank (0 without MPI).
    pub rank: usize,
    /// Ranks in the job (1 without MPI).
    pub size: usize,
}

impl Launch {
    /// The world communicator, when running under MPI.
    pub fn world(&self) -> Option<mpi::topology::SimpleCommunicator> {
        self.universe.as_ref().map(|u| u.world())
    }
}

/// The launcher's idea of the world size, from the variables mpirun/srun set.
fn launcher_sizes() -> Vec<(String, usize)> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "MPI_LOCALNRANKS_GLOBAL",
    ]
    .iter()
    .filter_map(|v| {
        std::env::var(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(|n| (v.to_string(), n))
    })
    .chain(
        // srun sets SLURM_STEP_NUM_TASKS for the ranks of a job step.
        std::env::var("SLURM_STEP_NUM_TASKS")
            .ok()
            .filter(|_| std::env::var("SLURM_STEP_ID").is_ok_and(|s| s != "batch" && s != "extern"))
            .and_then(|s| s.parse().ok())
            .map(|n| ("SLURM_STEP_NUM_TASKS".to_string(), n)),
    )
    .collect()
}

/// Whether this process was started by an MPI launcher.
fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Initialises MPI when a launcher started this process, installs the abort-on-panic hook
/// for multi-rank jobs, and refuses a world whose size differs from the launcher's.
pub(crate) fn launch() -> Result<Launch, SweepError> {
    faer::set_global_parallelism(faer::Par::Seq);
    let universe = if launched_by_mpi() {
        let (u, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| SweepError::MpiInit("MPI was already initialised".into()))?;
        Some(u)
    } else {
        None
    };
    let world = universe.as_ref().map(|u| u.world());
    let size = world.as_ref().map_or(1, |w| w.size() as usize);
    let rank = world.as_ref().map_or(0, |w| w.rank() as usize);
    if size > 1 {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            eprintln!("sharpsweep: a panic on one rank aborts the whole MPI job");
            // SAFETY: MPI is initialised; MPI_Abort never returns.
            unsafe {
                mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 70);
            }
        }));
    }
    for (var, expected) in launcher_sizes() {
        if expected != size {
            return Err(SweepError::WorldSize {
                world: size,
                var,
                expected,
            });
        }
    }
    Ok(Launch {
        universe,
        rank,
        size,
    })
}
