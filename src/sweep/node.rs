//! One dataset copy per node. Under MPI the world is split by node
//! (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`); the node's first rank loads and
//! preprocesses the dataset into the arrays a [`Problem`] holds, copies them into an MPI-3
//! shared window (`MPI_Win_allocate_shared`: memory MPI maps into every rank of the node,
//! and frees with the window, on every exit path MPI has), and every rank of the node,
//! the first one included, reads them there as [`SharedArray`] views, without a copy. The
//! files are read once per node per start; the numbers are the same bytes as a per-rank
//! load, so results are bit-identical.
//!
//! `SHARPSWEEP_DATA_PER_RANK=1` makes every rank load its own copy, as before (to compare,
//! or where shared memory is unwanted). One process without a launcher always owns its
//! data.

use super::SweepError;
use crate::config::{Config, ModelKind};
use crate::data::{self, SharedArray};
use crate::model::Float;
use crate::train::Problem;
use mpi::collective::SystemOperation;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::sync::Arc;

/// The environment variable that forces one dataset copy per rank.
pub const PER_RANK_ENV: &str = "SHARPSWEEP_DATA_PER_RANK";

/// Whether [`PER_RANK_ENV`] asks every rank to load its own copy: unset, empty or `0`: no;
/// `1`: yes; anything else is an error that names the variable.
pub fn per_rank_forced() -> Result<bool, String> {
    per_rank_value(std::env::var(PER_RANK_ENV).ok().as_deref())
}

fn per_rank_value(value: Option<&str>) -> Result<bool, String> {
    match value.map(str::trim) {
        None | Some("") | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(format!(
            "{PER_RANK_ENV}={other:?}: expected 1 (every rank loads its own copy of the \
             dataset) or 0 (one shared copy per node, the default)"
        )),
    }
}

/// Whether the `ranks` ranks of one node would share one copy of `cfg`'s data: more than
/// one rank, a dataset to share (not the uv model), and not forced per rank.
pub fn shares(cfg: &Config, ranks: usize, forced: bool) -> bool {
    ranks > 1 && cfg.model.kind == ModelKind::Mlp && !forced
}

/// How a sweep's ranks got their data, summed over the whole job.
#[derive(Clone, Debug, PartialEq)]
pub struct DataLoads {
    /// Datasets read (or generated) by all ranks together.
    pub reads: usize,
    /// Ranks in the job.
    pub ranks: usize,
    /// Nodes (shared-memory domains) of the job.
    pub nodes: usize,
    /// Whether the ranks of a node share one copy.
    pub shared: bool,
    /// Bytes of one copy of the problem's arrays.
    pub bytes: usize,
}

impl DataLoads {
    /// One line for stderr and the file's history, e.g. "dataset read 1 time(s) for 4
    /// rank(s) on 1 node(s): one shared read-only copy per node (0.18 GiB)".
    pub fn describe(&self) -> String {
        let how = if self.shared {
            "one shared read-only copy per node"
        } else {
            "one copy per rank"
        };
        format!(
            "dataset read {} time(s) for {} rank(s) on {} node(s): {how} ({})",
            self.reads,
            self.ranks,
            self.nodes,
            super::preflight::gib(self.bytes as f64)
        )
    }
}

/// Bytes of the four arrays of a problem.
fn problem_bytes<T>(p: &Problem<T>) -> usize {
    std::mem::size_of::<T>() * (p.x_train.len() + p.y_train.len() + p.x_meas.len() + p.y_meas.len())
}

/// The problem of `cfg` on this rank, and how the job's ranks got theirs. Under MPI
/// (`world`) every rank must call this (it is collective). When any rank could not load
/// the data, every rank returns an error once all have heard of it (none waits on
/// another): the rank that failed its loader's error, the others [`SweepError::Remote`].
pub(crate) fn load_problem<T: Float>(
    cfg: &Config,
    world: Option<&SimpleCommunicator>,
) -> Result<(Problem<T>, DataLoads), SweepError> {
    let forced = per_rank_forced().map_err(SweepError::Environment)?;
    let Some(world) = world else {
        let problem = Problem::<T>::from_config(cfg)?;
        let loads = DataLoads {
            reads: data::loads(),
            ranks: 1,
            nodes: 1,
            shared: false,
            bytes: problem_bytes(&problem),
        };
        return Ok((problem, loads));
    };
    let node = world.split_shared(world.rank());
    let leader = node.rank() == 0;
    let shared = shares(cfg, node.size() as usize, forced);
    let problem = if shared {
        shared_problem::<T>(cfg, node)
    } else {
        Problem::<T>::from_config(cfg).map_err(SweepError::from)
    };
    let bytes = problem.as_ref().map_or(0, problem_bytes);
    let mine = [
        data::loads() as u64,
        u64::from(leader),
        u64::from(problem.is_err()),
    ];
    let mut all = [0u64; 3];
    world.all_reduce_into(&mine[..], &mut all[..], SystemOperation::sum());
    let problem = match problem {
        Err(e) => return Err(e),
        Ok(_) if all[2] > 0 => return Err(SweepError::Remote),
        Ok(p) => p,
    };
    let loads = DataLoads {
        reads: all[0] as usize,
        ranks: world.size() as usize,
        nodes: all[1] as usize,
        shared,
        bytes,
    };
    Ok((problem, loads))
}

/// The node's shared problem: its first rank loads, every rank views the shared copy.
fn shared_problem<T: Float>(
    cfg: &Config,
    node: SimpleCommunicator,
) -> Result<Problem<T>, SweepError> {
    let leader = node.rank() == 0;
    let built = leader.then(|| Problem::<T>::from_config(cfg));
    // What the others need to know: success, the shapes, and the description (or the
    // loader's error message).
    let mut header = [0u64; 8];
    let mut text = Vec::new();
    match &built {
        Some(Ok(p)) => {
            header = [
                1,
                p.input_dim as u64,
                p.outputs as u64,
                p.x_train.len() as u64,
                p.y_train.len() as u64,
                p.x_meas.len() as u64,
                p.y_meas.len() as u64,
                p.description.len() as u64,
            ];
            text = p.description.clone().into_bytes();
        }
        Some(Err(e)) => {
            text = e.to_string().into_bytes();
            header[7] = text.len() as u64;
        }
        None => {}
    }
    let root = node.process_at_rank(0);
    root.broadcast_into(&mut header[..]);
    text.resize(header[7] as usize, 0);
    root.broadcast_into(&mut text[..]);
    if header[0] == 0 {
        return Err(match built {
            Some(Err(e)) => e.into(),
            _ => SweepError::Remote,
        });
    }
    let lens = [header[3], header[4], header[5], header[6]].map(|n| n as usize);
    let layout = Layout::new::<T>(lens);
    let window = NodeWindow::allocate(node, if leader { layout.total } else { 0 });
    if let Some(Ok(p)) = built {
        // Array by array, each owned copy freed once it is in the window.
        let Problem {
            x_train,
            y_train,
            x_meas,
            y_meas,
            ..
        } = p;
        for (i, a) in [x_train, y_train, x_meas, y_meas].into_iter().enumerate() {
            // SAFETY: the window holds `layout.total` bytes from `base`, and array i fits
            // at its offset (Layout); before the fence only this rank touches it.
            unsafe {
                let dst = window.base.add(layout.offsets[i]) as *mut T;
                std::ptr::copy_nonoverlapping(a.as_ptr(), dst, a.len());
            }
        }
    }
    window.publish();
    let base = window.base;
    let owner: Arc<dyn Send + Sync> = Arc::new(window);
    // SAFETY: every view lies inside the window (Layout), which `owner` keeps allocated;
    // after `publish` nobody writes it.
    let view = |i: usize| unsafe {
        SharedArray::view(
            base.add(layout.offsets[i]) as *const T,
            lens[i],
            owner.clone(),
        )
    };
    Ok(Problem {
        input_dim: header[1] as usize,
        outputs: header[2] as usize,
        x_train: view(0),
        y_train: view(1),
        x_meas: view(2),
        y_meas: view(3),
        description: String::from_utf8_lossy(&text).into_owned(),
    })
}

/// Where the four arrays of a problem lie in the shared window: each at a 64-byte
/// boundary.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    offsets: [usize; 4],
    total: usize,
}

impl Layout {
    const ALIGN: usize = 64;

    fn new<T>(lens: [usize; 4]) -> Layout {
        let mut offsets = [0; 4];
        let mut at = 0;
        for (o, n) in offsets.iter_mut().zip(lens) {
            *o = at;
            at = (at + n * std::mem::size_of::<T>()).next_multiple_of(Self::ALIGN);
        }
        Layout { offsets, total: at }
    }
}

/// An MPI-3 shared-memory window of one node: the first rank's memory, mapped by all.
/// Freed (collectively: every rank of the node drops its handle at the end of the sweep)
/// when the last view of it goes.
struct NodeWindow {
    win: ffi::MPI_Win,
    /// Start of the first rank's memory, in this process's address space.
    base: *mut u8,
    /// The node's communicator, kept while the window lives.
    _node: SimpleCommunicator,
}

// SAFETY: the window's memory is read-only after `publish`; the handle is used (freed)
// only on the thread that runs the sweep, which is the thread MPI was initialised on.
unsafe impl Send for NodeWindow {}
// SAFETY: as above; shared references only read the memory.
unsafe impl Sync for NodeWindow {}

impl NodeWindow {
    /// Allocates the window (collective over `node`): `bytes` on this rank (0 on all but
    /// the first), and opens the epoch in which the first rank fills it.
    fn allocate(node: SimpleCommunicator, bytes: usize) -> NodeWindow {
        let mut base: *mut u8 = std::ptr::null_mut();
        // SAFETY: the null window handle is only a placeholder MPI overwrites.
        let mut win: ffi::MPI_Win = unsafe { ffi::RSMPI_WIN_NULL };
        // SAFETY: valid communicator and out-pointers; MPI_Win_allocate_shared stores the
        // address of this rank's segment into `base` (a `void **` passed as `void *`).
        let rc = unsafe {
            ffi::MPI_Win_allocate_shared(
                bytes as ffi::MPI_Aint,
                1,
                ffi::RSMPI_INFO_NULL,
                node.as_raw(),
                (&mut base as *mut *mut u8).cast(),
                &mut win,
            )
        };
        assert_eq!(rc, 0, "MPI_Win_allocate_shared failed ({rc})");
        let (mut size, mut unit): (ffi::MPI_Aint, std::os::raw::c_int) = (0, 0);
        // SAFETY: `win` is a shared window of `node`; rank 0's segment is the data.
        let rc = unsafe {
            ffi::MPI_Win_shared_query(
                win,
                0,
                &mut size,
                &mut unit,
                (&mut base as *mut *mut u8).cast(),
            )
        };
        assert_eq!(rc, 0, "MPI_Win_shared_query failed ({rc})");
        // SAFETY: a window of this process; a fence is collective over the node.
        let rc = unsafe { ffi::MPI_Win_fence(ffi::MPI_MODE_NOPRECEDE as i32, win) };
        assert_eq!(rc, 0, "MPI_Win_fence failed ({rc})");
        NodeWindow {
            win,
            base,
            _node: node,
        }
    }

    /// Ends the epoch (collective): after it every rank of the node sees what the first
    /// rank wrote.
    fn publish(&self) {
        // SAFETY: a window of this process; a fence is collective over the node.
        let rc = unsafe { ffi::MPI_Win_fence(0, self.win) };
        assert_eq!(rc, 0, "MPI_Win_fence failed ({rc})");
    }
}

impl Drop for NodeWindow {
    fn drop(&mut self) {
        // SAFETY: a window of this process, freed once; no view outlives this owner.
        unsafe {
            ffi::MPI_Win_free(&mut self.win);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_rank_variable_is_checked_by_name() {
        assert_eq!(per_rank_value(None), Ok(false));
        assert_eq!(per_rank_value(Some("0")), Ok(false));
        assert_eq!(per_rank_value(Some(" ")), Ok(false));
        assert_eq!(per_rank_value(Some("1")), Ok(true));
        let err = per_rank_value(Some("yes please")).unwrap_err();
        assert!(
            err.starts_with("SHARPSWEEP_DATA_PER_RANK=\"yes please\""),
            "{err}"
        );
    }

    #[test]
    fn sharing_needs_ranks_a_dataset_and_no_override() {
        let mlp = Config::default();
        assert!(shares(&mlp, 4, false));
        assert!(!shares(&mlp, 1, false));
        assert!(!shares(&mlp, 4, true));
        let mut uv = Config::default();
        uv.model.kind = ModelKind::Uv;
        assert!(!shares(&uv, 4, false));
    }

    #[test]
    fn the_layout_aligns_every_array_and_holds_them_all() {
        let l = Layout::new::<f64>([3, 0, 10, 1]);
        assert_eq!(l.offsets, [0, 64, 64, 192]);
        assert_eq!(l.total, 256);
        let l = Layout::new::<f32>([16, 16, 1, 1]);
        assert_eq!(l.offsets, [0, 64, 128, 192]);
        assert!(l.offsets.iter().all(|o| o % Layout::ALIGN == 0));
        assert_eq!(Layout::new::<f32>([0; 4]).total, 0);
    }

    #[test]
    fn the_description_counts_reads_ranks_and_nodes() {
        let mut l = DataLoads {
            reads: 1,
            ranks: 4,
            nodes: 1,
            shared: true,
            bytes: 1 << 30,
        };
        assert_eq!(
            l.describe(),
            "dataset read 1 time(s) for 4 rank(s) on 1 node(s): one shared read-only copy \
             per node (1.00 GiB)"
        );
        l.shared = false;
        l.reads = 4;
        assert!(l.describe().contains("read 4 time(s)") && l.describe().contains("per rank"));
    }
}
