//! Networks: the fully connected MLP with exact gradients and Hessian-vector products
//! ([`mlp`]), its parameterizations and initialization ([`param`]), and the analytic uv
//! model ([`uv`]). Generic over f32 and f64 through [`Float`].

pub(crate) mod mlp;
pub mod param;
pub mod uv;

pub use mlp::{Curvature, HvpOperator, MlpWorkspace};
pub use param::{Activation, MlpSpec, NetOptions, Parameterization, Readout};

use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// Floating-point precision of the network passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit (as the authors' JAX code).
    F32,
    /// 64-bit.
    F64,
}

/// A computation generic over the network precision, run in the configured one by
/// [`Precision::dispatch`]: the one place a [`Precision`] becomes a type.
pub trait PrecisionTask {
    /// What the computation returns.
    type Output;
    /// Runs it with networks in `T`.
    fn run<T: Float>(self) -> Self::Output;
}

impl Precision {
    /// Runs `task` with networks in this precision.
    pub fn dispatch<W: PrecisionTask>(self, task: W) -> W::Output {
        match self {
            Precision::F32 => task.run::<f32>(),
            Precision::F64 => task.run::<f64>(),
        }
    }
}

/// The floating-point types the network passes run in (f32 as the authors' JAX code, or
/// f64). Reductions (losses, norms) and the eigen-solvers always work in f64.
pub trait Float:
    faer::traits::RealField
    + Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Send
    + Sync
    + 'static
{
    /// Name stored in the results file ("f32" / "f64").
    const NAME: &'static str;
    /// Conversion from f64 (rounding for f32).
    fn of(x: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}
