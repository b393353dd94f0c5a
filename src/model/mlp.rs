//! The fully connected network: forward pass, MSE or softmax cross-entropy loss, gradient
//! by backpropagation and
//! the exact Hessian-vector product of the full loss Hessian (Pearlmutter's R-operator,
//! second-order terms included; not Gauss–Newton).
//!
//! Conventions. Examples are columns: inputs are `input_dim × m` column-major slices,
//! targets `outputs × m`. Layer l computes h_l = s_l · W_l a_{l−1} (+ b_l), a_l = φ(h_l),
//! with a_0 = x and the readout f = h_d linear. The loss is
//! L = α/(2·m·k) · Σ_i Σ_j (f_ij − y_ij)² (α = `loss_scale`, k = outputs), or with
//! `Loss::CrossEntropy` L = α/m · Σ_j (s_j·lse(f_·j) − Σ_i y_ij f_ij), s_j = Σ_i y_ij
//! (= −α/m Σ_j log softmax(f_·j)_label for one-hot targets): ∂L/∂f_·j = α/m (s_j p_j − y_·j)
//! and ∂²L/∂f_·j² = α/m · s_j (diag p_j − p_j p_jᵀ), p_j = softmax(f_·j).
//! All products go through faer's matmul with the workspace's explicit [`Par`]; every
//! buffer is allocated once per (network, batch capacity) in [`MlpWorkspace`].

use super::param::{layout, Activation, LayerLayout, Loss, MlpSpec};
use super::Float;
use crate::elementwise;
use crate::hessian::SymmetricOperator;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// φ'(h) expressed through a = φ(h).
#[inline(always)]
fn dphi<T: Float>(act: Activation, a: T) -> T {
    match act {
        Activation::Relu => {
            if a > T::of(0.0) {
                T::of(1.0)
            } else {
                T::of(0.0)
            }
        }
        Activation::Linear => T::of(1.0),
        Activation::Tanh => T::of(1.0) - a * a,
    }
}

/// Scratch buffers for passes over at most `capacity` examples: activations, deltas and
/// their R-operator versions, each `rows × capacity`, allocated once.
#[derive(Clone, Debug)]
pub struct MlpWorkspace<T> {
    layers: Vec<LayerLayout>,
    n_params: usize,
    activation: Activation,
    outputs: usize,
    loss_scale: f64,
    loss_kind: Loss,
    capacity: usize,
    m: usize,
    par: Par,
    /// Hidden post-activations a_1..a_{d−1}.
    a: Vec<Vec<T>>,
    /// Network output f (k × m).
    f: Vec<T>,
    /// δ_l = ∂L/∂h_l, l = 1..d.
    delta: Vec<Vec<T>>,
    /// ∂L/∂a_l for hidden l (kept for the φ'' term; tanh only).
    ga: Vec<Vec<T>>,
    /// R(h_l) for hidden l (tanh only; otherwise R(a_l) is formed in place in `ra`).
    rh: Vec<Vec<T>>,
    /// R(a_l) for hidden l.
    ra: Vec<Vec<T>>,
    /// R(f).
    rf: Vec<T>,
    /// R(δ_l), l = 1..d.
    rdelta: Vec<Vec<T>>,
    /// Cross-entropy: softmax(f) (k × m) and the target sums s_j (m) of the last backward
    /// pass (empty for the MSE).
    probs: Vec<T>,
    ysum: Vec<T>,
    /// An [`HvpOperator`]'s input and output in T (P each), kept between the operators of
    /// a run so that a measurement allocates none (empty until the first operator).
    op_io: (Vec<T>, Vec<T>),
}

/// (max fᵢ, Σᵢ exp(fᵢ − max f)) of one column of logits, in f64: the softmax is
/// exp(fᵢ − max)/Σ and the log-sum-exp max + ln Σ, without overflow.
fn shifted_exp_sum<T: Float>(f: &[T]) -> (f64, f64) {
    let top = f
        .iter()
        .map(|v| v.to_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    (top, f.iter().map(|v| (v.to_f64() - top).exp()).sum())
}

fn view<T: Float>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_column_major_slice(&s[..rows * cols], rows, cols)
}

fn view_mut<T: Float>(s: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_column_major_slice_mut(&mut s[..rows * cols], rows, cols)
}

fn weights<'a, T: Float>(p: &'a [T], l: &LayerLayout) -> MatRef<'a, T> {
    view(&p[l.w_offset..], l.rows, l.cols)
}

fn weights_mut<'a, T: Float>(p: &'a mut [T], l: &LayerLayout) -> MatMut<'a, T> {
    view_mut(&mut p[l.w_offset..], l.rows, l.cols)
}

/// out[:, j] += b for every column j.
fn add_bias<T: Float>(out: &mut [T], b: &[T], rows: usize, m: usize) {
    for col in out[..rows * m].chunks_exact_mut(rows) {
        for (o, bi) in col.iter_mut().zip(b) {
            *o += *bi;
        }
    }
}

/// g = row sums of the rows × m matrix `d`.
fn row_sums<T: Float>(g: &mut [T], d: &[T], rows: usize, m: usize) {
    g.iter_mut().for_each(|x| *x = T::of(0.0));
    for col in d[..rows * m].chunks_exact(rows) {
        for (gi, di) in g.iter_mut().zip(col) {
            *gi += *di;
        }
    }
}

impl<T: Float> MlpWorkspace<T> {
    /// Buffers for `spec` and up to `capacity` examples per pass, using `par` for matmuls.
    pub fn new(spec: &MlpSpec, capacity: usize, par: Par) -> Self {
        assert!(spec.depth >= 1, "depth must be at least 1");
        let (layers, n_params) = layout(spec);
        let d = spec.depth;
        let hidden = |_: usize| vec![T::of(0.0); spec.width * capacity];
        let tanh = spec.net.activation == Activation::Tanh;
        let delta = layers
            .iter()
            .map(|l| vec![T::of(0.0); l.rows * capacity])
            .collect::<Vec<_>>();
        MlpWorkspace {
            n_params,
            activation: spec.net.activation,
            outputs: spec.outputs,
            loss_scale: spec.net.loss_scale,
            loss_kind: spec.net.loss,
            capacity,
            m: capacity,
            par,
            a: (1..d).map(hidden).collect(),
            f: vec![T::of(0.0); spec.outputs * capacity],
            rdelta: delta.clone(),
            delta,
            ga: if tanh {
                (1..d).map(hidden).collect()
            } else {
                Vec::new()
            },
            rh: if tanh {
                (1..d).map(hidden).collect()
            } else {
                Vec::new()
            },
            ra: (1..d).map(hidden).collect(),
            rf: vec![T::of(0.0); spec.outputs * capacity],
            probs: match spec.net.loss {
                Loss::Mse => Vec::new(),
                Loss::CrossEntropy => vec![T::of(0.0); spec.outputs * capacity],
            },
            ysum: match spec.net.loss {
                Loss::Mse => Vec::new(),
                Loss::CrossEntropy => vec![T::of(0.0); capacity],
            },
            op_io: (Vec::new(), Vec::new()),
            layers,
        }
    }

    /// Maximum examples per pass.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Parameter count P of the network this workspace serves.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The network output f of the last forward pass (k × m column-major).
    pub fn output(&self) -> &[T] {
        &self.f[..self.outputs * self.m]
    }

    /// Forward pass over the `m` examples in `x` (d_in × m); keeps the activations.
    pub fn forward(&mut self, p: &[T], x: &[T], m: usize) {
        assert!(
            m <= self.capacity && m > 0,
            "batch of {m} exceeds the workspace"
        );
        assert_eq!(p.len(), self.n_params);
        self.m = m;
        let d = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let w = weights(p, layer);
            let split = l.min(self.a.len());
            let (before, rest) = self.a.split_at_mut(split);
            let input = if l == 0 {
                view(x, layer.cols, m)
            } else {
                view(&before[l - 1], layer.cols, m)
            };
            let out: &mut [T] = if l + 1 == d {
                &mut self.f
            } else {
                &mut rest[0]
            };
            matmul(
                view_mut(out, layer.rows, m),
                Accum::Replace,
                w,
                input,
                T::of(layer.scale),
                self.par,
            );
            if let Some(bo) = layer.b_offset {
                add_bias(out, &p[bo..bo + layer.rows], layer.rows, m);
            }
            if l + 1 < d {
                let out = &mut out[..layer.rows * m];
                let par = self.par;
                match self.activation {
                    Activation::Relu => elementwise::map(par, out, |v| {
                        // A select, not a branch: the store is unconditional, so it vectorizes
                        *v = if *v < T::of(0.0) { T::of(0.0) } else { *v }
                    }),
                    Activation::Tanh => elementwise::map(par, out, |v| *v = v.tanh()),
                    Activation::Linear => {}
                }
            }
        }
    }

    /// The loss of the last forward pass against targets `y` (k × m), in f64.
    pub fn loss(&self, y: &[T]) -> f64 {
        if self.loss_kind == Loss::CrossEntropy {
            return self.cross_entropy(y);
        }
        let n = self.outputs * self.m;
        let s: f64 = self.f[..n]
            .iter()
            .zip(&y[..n])
            .map(|(f, y)| {
                let e = f.to_f64() - y.to_f64();
                e * e
            })
            .sum();
        self.loss_scale * s / (2.0 * n as f64)
    }

    /// α/m · Σ_j (s_j·lse(f_·j) − y_·jᵀ f_·j) in f64.
    fn cross_entropy(&self, y: &[T]) -> f64 {
        let k = self.outputs;
        let total: f64 = (0..self.m)
            .map(|j| {
                let (f, y) = (&self.f[j * k..(j + 1) * k], &y[j * k..(j + 1) * k]);
                let (top, z) = shifted_exp_sum(f);
                let lse = top + z.ln();
                f.iter()
                    .zip(y)
                    .map(|(f, y)| y.to_f64() * (lse - f.to_f64()))
                    .sum::<f64>()
            })
            .sum();
        self.loss_scale * total / self.m as f64
    }

    /// The readout's δ = ∂L/∂f for targets `y`; for the cross-entropy also keeps
    /// softmax(f) and the target sums for the R-backward pass.
    fn output_delta(&mut self, y: &[T]) {
        let (m, k, d) = (self.m, self.outputs, self.layers.len());
        let delta = &mut self.delta[d - 1][..k * m];
        match self.loss_kind {
            Loss::Mse => {
                let c = T::of(self.loss_scale / (m * k) as f64);
                for ((dl, f), y) in delta.iter_mut().zip(&self.f[..k * m]).zip(&y[..k * m]) {
                    *dl = (*f - *y) * c;
                }
            }
            Loss::CrossEntropy => {
                let c = self.loss_scale / m as f64;
                for j in 0..m {
                    let f = &self.f[j * k..(j + 1) * k];
                    let (top, z) = shifted_exp_sum(f);
                    let yj = &y[j * k..(j + 1) * k];
                    let s: f64 = yj.iter().map(|v| v.to_f64()).sum();
                    self.ysum[j] = T::of(s);
                    for i in 0..k {
                        let p = (f[i].to_f64() - top).exp() / z;
                        self.probs[j * k + i] = T::of(p);
                        delta[j * k + i] = T::of(c * (s * p - yj[i].to_f64()));
                    }
                }
            }
        }
    }

    /// R(δ) of the readout from R(f): the loss Hessian in f applied to R(f).
    fn output_r_delta(&mut self) {
        let (m, k, d) = (self.m, self.outputs, self.layers.len());
        let rdelta = &mut self.rdelta[d - 1][..k * m];
        match self.loss_kind {
            Loss::Mse => {
                let c = T::of(self.loss_scale / (m * k) as f64);
                for (r, f) in rdelta.iter_mut().zip(&self.rf[..k * m]) {
                    *r = *f * c;
                }
            }
            Loss::CrossEntropy => {
                // α/m · s_j (diag p − p pᵀ) R(f): p ⊙ (R(f) − pᵀR(f)), scaled.
                let c = self.loss_scale / m as f64;
                for j in 0..m {
                    let (p, rf) = (
                        &self.probs[j * k..(j + 1) * k],
                        &self.rf[j * k..(j + 1) * k],
                    );
                    let mean: f64 = p.iter().zip(rf).map(|(p, r)| p.to_f64() * r.to_f64()).sum();
                    let scale = c * self.ysum[j].to_f64();
                    for i in 0..k {
                        let v = scale * p[i].to_f64() * (rf[i].to_f64() - mean);
                        rdelta[j * k + i] = T::of(v);
                    }
                }
            }
        }
    }

    /// Backpropagation after [`MlpWorkspace::forward`]: fills the deltas and, if `grad` is
    /// given, writes ∇L into it (length P).
    pub fn backward(&mut self, p: &[T], x: &[T], y: &[T], mut grad: Option<&mut [T]>) {
        let m = self.m;
        let d = self.layers.len();
        self.output_delta(y);
        for l in (0..d).rev() {
            let layer = self.layers[l];
            let (lower, upper) = self.delta.split_at_mut(l);
            let delta_l = &upper[0][..layer.rows * m];
            let input = if l == 0 {
                view(x, layer.cols, m)
            } else {
                view(&self.a[l - 1], layer.cols, m)
            };
            if let Some(g) = grad.as_deref_mut() {
                matmul(
                    weights_mut(g, &layer),
                    Accum::Replace,
                    view(delta_l, layer.rows, m),
                    input.transpose(),
                    T::of(layer.scale),
                    self.par,
                );
                if let Some(bo) = layer.b_offset {
                    row_sums(&mut g[bo..bo + layer.rows], delta_l, layer.rows, m);
                }
            }
            if l == 0 {
                break;
            }
            let target: &mut [T] = if self.activation == Activation::Tanh {
                &mut self.ga[l - 1]
            } else {
                &mut lower[l - 1]
            };
            matmul(
                view_mut(target, layer.cols, m),
                Accum::Replace,
                weights(p, &layer).transpose(),
                view(delta_l, layer.rows, m),
                T::of(layer.scale),
                self.par,
            );
            let a = &self.a[l - 1][..layer.cols * m];
            let out = &mut lower[l - 1][..layer.cols * m];
            match self.activation {
                Activation::Relu => elementwise::zip(self.par, out, a, |o, a| {
                    *o = if *a <= T::of(0.0) { T::of(0.0) } else { *o }
                }),
                Activation::Linear => {}
                Activation::Tanh => {
                    let ga = &self.ga[l - 1][..layer.cols * m];
                    elementwise::zip3(self.par, out, a, ga, |o, a, g| {
                        *o = (T::of(1.0) - *a * *a) * *g
                    });
                }
            }
        }
    }

    /// Loss and gradient on `m` examples (forward + backward).
    pub fn loss_and_grad(&mut self, p: &[T], x: &[T], y: &[T], m: usize, grad: &mut [T]) -> f64 {
        self.forward(p, x, m);
        let loss = self.loss(y);
        self.backward(p, x, y, Some(grad));
        loss
    }

    /// Loss over any number of examples (columns of `x`, `y`), in passes of at most
    /// `capacity` examples; the result is the loss of the whole set.
    pub fn loss_over(&mut self, p: &[T], x: &[T], y: &[T], input_dim: usize) -> f64 {
        let k = self.outputs;
        let n = y.len() / k;
        let mut total = 0.0;
        let mut start = 0;
        while start < n {
            let m = (n - start).min(self.capacity);
            self.forward(p, &x[start * input_dim..(start + m) * input_dim], m);
            total += self.loss(&y[start * k..(start + m) * k]) * m as f64;
            start += m;
        }
        total / n as f64
    }

    /// R-forward pass along direction `v` (length P), after forward and backward.
    fn r_forward(&mut self, p: &[T], v: &[T], x: &[T]) {
        let m = self.m;
        let d = self.layers.len();
        let tanh = self.activation == Activation::Tanh;
        for l in 0..d {
            let layer = self.layers[l];
            let s = T::of(layer.scale);
            let input = if l == 0 {
                view(x, layer.cols, m)
            } else {
                view(&self.a[l - 1], layer.cols, m)
            };
            let split = l.min(self.ra.len());
            let (ra_before, ra_rest) = self.ra.split_at_mut(split);
            let out: &mut [T] = if l + 1 == d {
                &mut self.rf
            } else if tanh {
                &mut self.rh[l]
            } else {
                &mut ra_rest[0]
            };
            matmul(
                view_mut(out, layer.rows, m),
                Accum::Replace,
                weights(v, &layer),
                input,
                s,
                self.par,
            );
            if l > 0 {
                matmul(
                    view_mut(out, layer.rows, m),
                    Accum::Add,
                    weights(p, &layer),
                    view(&ra_before[l - 1], layer.cols, m),
                    s,
                    self.par,
                );
            }
            if let Some(bo) = layer.b_offset {
                add_bias(out, &v[bo..bo + layer.rows], layer.rows, m);
            }
            if l + 1 < d {
                let a = &self.a[l][..layer.rows * m];
                match self.activation {
                    Activation::Relu => {
                        elementwise::zip(self.par, &mut ra_rest[0][..layer.rows * m], a, |r, a| {
                            *r = if *a <= T::of(0.0) { T::of(0.0) } else { *r }
                        })
                    }
                    Activation::Linear => {}
                    Activation::Tanh => {
                        let rh = &self.rh[l][..layer.rows * m];
                        ra_rest[0][..layer.rows * m]
                            .iter_mut()
                            .zip(a)
                            .zip(rh)
                            .for_each(|((r, a), h)| *r = dphi(Activation::Tanh, *a) * *h);
                    }
                }
            }
        }
    }

    /// R-backward pass: writes H v into `out` (length P), after [`Self::r_forward`]. With
    /// `gauss_newton`, the terms of the network's own curvature (δ R(a)ᵀ, Vᵀδ, φ'' R(h) g)
    /// are left out: what remains back-propagates the loss Hessian times J v through the
    /// linearized network, Jᵀ(∇²ℓ)J v, the Gauss-Newton product.
    fn r_backward(&mut self, p: &[T], v: &[T], x: &[T], out: &mut [T], gauss_newton: bool) {
        let m = self.m;
        let d = self.layers.len();
        self.output_r_delta();
        for l in (0..d).rev() {
            let layer = self.layers[l];
            let s = T::of(layer.scale);
            let (lower, upper) = self.rdelta.split_at_mut(l);
            let rdelta_l = &upper[0][..layer.rows * m];
            let delta_l = &self.delta[l][..layer.rows * m];
            let input = if l == 0 {
                view(x, layer.cols, m)
            } else {
                view(&self.a[l - 1], layer.cols, m)
            };
            // R(∇_W L) = s (R(δ) a_{l−1}ᵀ + δ R(a_{l−1})ᵀ)
            matmul(
                weights_mut(out, &layer),
                Accum::Replace,
                view(rdelta_l, layer.rows, m),
                input.transpose(),
                s,
                self.par,
            );
            if l > 0 && !gauss_newton {
                matmul(
                    weights_mut(out, &layer),
                    Accum::Add,
                    view(delta_l, layer.rows, m),
                    view(&self.ra[l - 1], layer.cols, m).transpose(),
                    s,
                    self.par,
                );
            }
            if let Some(bo) = layer.b_offset {
                row_sums(&mut out[bo..bo + layer.rows], rdelta_l, layer.rows, m);
            }
            if l == 0 {
                break;
            }
            // R(∂L/∂a_{l−1}) = s (Vᵀ δ + Wᵀ R(δ)), formed in place in R(δ_{l−1}).
            let t = &mut lower[l - 1];
            if !gauss_newton {
                matmul(
                    view_mut(t, layer.cols, m),
                    Accum::Replace,
                    weights(v, &layer).transpose(),
                    view(delta_l, layer.rows, m),
                    s,
                    self.par,
                );
            }
            matmul(
                view_mut(t, layer.cols, m),
                if gauss_newton {
                    Accum::Replace
                } else {
                    Accum::Add
                },
                weights(p, &layer).transpose(),
                view(rdelta_l, layer.rows, m),
                s,
                self.par,
            );
            let a = &self.a[l - 1][..layer.cols * m];
            let t = &mut t[..layer.cols * m];
            match self.activation {
                Activation::Relu => elementwise::zip(self.par, t, a, |o, a| {
                    *o = if *a <= T::of(0.0) { T::of(0.0) } else { *o }
                }),
                Activation::Linear => {}
                Activation::Tanh => {
                    // R(δ) = φ'(h) R(g_a) + φ''(h) R(h) g_a, φ' = 1 − a², φ'' = −2a(1 − a²).
                    let ga = &self.ga[l - 1][..layer.cols * m];
                    let rh = &self.rh[l - 1][..layer.cols * m];
                    let second = T::of(if gauss_newton { 0.0 } else { 1.0 });
                    for (((o, a), g), h) in t.iter_mut().zip(a).zip(ga).zip(rh) {
                        let d1 = T::of(1.0) - *a * *a;
                        let d2 = T::of(-2.0) * *a * d1;
                        *o = d1 * *o + second * d2 * *h * *g;
                    }
                }
            }
        }
    }

    /// H v on the examples of the last forward/backward pass, into `out`.
    pub fn hvp(&mut self, p: &[T], x: &[T], v: &[T], out: &mut [T]) {
        self.r_forward(p, v, x);
        self.r_backward(p, v, x, out, false);
    }

    /// The Gauss-Newton product G v = Jᵀ(∇²ℓ)J v on the examples of the last
    /// forward/backward pass (J: the Jacobian of the outputs; no dense Jacobian is formed).
    pub fn gnvp(&mut self, p: &[T], x: &[T], v: &[T], out: &mut [T]) {
        self.r_forward(p, v, x);
        self.r_backward(p, v, x, out, true);
    }
}

/// Which curvature matrix an [`HvpOperator`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curvature {
    /// The loss Hessian H.
    Hessian,
    /// Its Gauss-Newton part G = Jᵀ(∇²ℓ)J (the NTK's curvature).
    GaussNewton,
}

/// The loss Hessian on a fixed example set as a symmetric operator, built once per
/// sharpness measurement: one forward and one backward pass are cached at construction;
/// each [`SymmetricOperator::apply`] runs only the R-forward and R-backward passes.
pub struct HvpOperator<'a, T: Float> {
    params: &'a [T],
    x: &'a [T],
    ws: &'a mut MlpWorkspace<T>,
    v: Vec<T>,
    out: Vec<T>,
    loss: f64,
    curvature: Curvature,
}

impl<'a, T: Float> HvpOperator<'a, T> {
    /// Caches the forward and backward passes of `params` on the `m` examples (x, y).
    pub fn new(
        params: &'a [T],
        x: &'a [T],
        y: &'a [T],
        m: usize,
        ws: &'a mut MlpWorkspace<T>,
    ) -> Self {
        Self::of(params, x, y, m, ws, Curvature::Hessian)
    }

    /// As [`HvpOperator::new`], applying `curvature`.
    pub fn of(
        params: &'a [T],
        x: &'a [T],
        y: &'a [T],
        m: usize,
        ws: &'a mut MlpWorkspace<T>,
        curvature: Curvature,
    ) -> Self {
        ws.forward(params, x, m);
        ws.backward(params, x, y, None);
        Self::cached(params, x, y, m, ws, curvature)
    }

    /// The operator on the passes `ws` already holds, without running them again: those
    /// of `params` on the `m` examples (x, y) that [`HvpOperator::of`] or
    /// [`MlpWorkspace::loss_and_grad`] left, with nothing run on `ws` since. It is then bit
    /// for bit the operator `of` builds (the backward pass's deltas do not depend on
    /// whether it also wrote a gradient).
    pub fn cached(
        params: &'a [T],
        x: &'a [T],
        y: &'a [T],
        m: usize,
        ws: &'a mut MlpWorkspace<T>,
        curvature: Curvature,
    ) -> Self {
        assert_eq!(ws.m, m, "the cached passes are of another example set");
        let loss = ws.loss(y);
        let n = ws.n_params();
        let (mut v, mut out) = std::mem::take(&mut ws.op_io);
        v.resize(n, T::of(0.0));
        out.resize(n, T::of(0.0));
        HvpOperator {
            params,
            x,
            ws,
            v,
            out,
            loss,
            curvature,
        }
    }

    /// Loss on the operator's example set at its parameters.
    pub fn loss(&self) -> f64 {
        self.loss
    }
}

impl<T: Float> Drop for HvpOperator<'_, T> {
    /// Hands the input and output buffers back to the workspace for the next operator.
    fn drop(&mut self) {
        self.ws.op_io = (std::mem::take(&mut self.v), std::mem::take(&mut self.out));
    }
}

impl<T: Float> SymmetricOperator for HvpOperator<'_, T> {
    fn dim(&self) -> usize {
        self.v.len()
    }
    fn apply(&mut self, x: &[f64], y: &mut [f64]) {
        let par = self.ws.par;
        elementwise::zip(par, &mut self.v, x, |v, x| *v = T::of(*x));
        match self.curvature {
            Curvature::Hessian => self.ws.hvp(self.params, self.x, &self.v, &mut self.out),
            Curvature::GaussNewton => self.ws.gnvp(self.params, self.x, &self.v, &mut self.out),
        }
        elementwise::zip(par, y, &self.out, |y, o| *y = o.to_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian::{dense_eigenvalues, dense_matrix, lanczos_top, LanczosOptions};
    use crate::model::param::{init_params, Parameterization, Readout};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Lanczos run to rounding: the oracle comparisons' options.
    fn exact() -> LanczosOptions {
        LanczosOptions {
            tol: 1e-12,
            max_iter: 500,
            ..Default::default()
        }
    }

    fn gaussian(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    fn spec(
        act: Activation,
        param: Parameterization,
        bias: bool,
        depth: usize,
        width: usize,
    ) -> MlpSpec {
        let mut s = MlpSpec::new(5, width, depth, 3);
        s.net.activation = act;
        s.net.parameterization = param;
        s.net.bias = bias;
        s
    }

    /// Random network with random (non-zero) biases so bias terms are exercised.
    fn setup(s: &MlpSpec, m: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut p: Vec<f64> = init_params(s, seed);
        let (layers, _) = layout(s);
        let noise = gaussian(p.len(), seed + 100);
        for l in &layers {
            if let Some(bo) = l.b_offset {
                for i in bo..bo + l.rows {
                    p[i] = 0.3 * noise[i];
                }
            }
        }
        let x = gaussian(s.input_dim * m, seed + 1);
        let y = gaussian(s.outputs * m, seed + 2);
        (p, x, y)
    }

    fn loss_at(s: &MlpSpec, p: &[f64], x: &[f64], y: &[f64], m: usize) -> f64 {
        let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
        ws.forward(p, x, m);
        ws.loss(y)
    }

    fn grad_at(s: &MlpSpec, p: &[f64], x: &[f64], y: &[f64], m: usize) -> Vec<f64> {
        let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
        let mut g = vec![0.0; p.len()];
        ws.loss_and_grad(p, x, y, m, &mut g);
        g
    }

    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let num: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
        num / den.max(1e-300)
    }

    /// Which hidden ReLUs are active at `p` (empty for smooth activations).
    fn relu_pattern(s: &MlpSpec, p: &[f64], x: &[f64], m: usize) -> Vec<bool> {
        if s.net.activation != Activation::Relu {
            return Vec::new();
        }
        let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
        ws.forward(p, x, m);
        ws.a.iter().flatten().map(|&a| a > 0.0).collect()
    }

    /// The largest step h ≤ h0 (halving) for which p ± h·v keep every ReLU on its side of the
    /// kink, so that a central difference sees one smooth piece. A preactivation within h0 of
    /// zero would otherwise turn the difference into a jump divided by h (seen: proptest case
    /// ReLU, sp, depth 2, width 5, seed 450).
    fn kink_free_step(s: &MlpSpec, p: &[f64], v: &[f64], x: &[f64], m: usize, h0: f64) -> f64 {
        let at = |t: f64| -> Vec<f64> { p.iter().zip(v).map(|(a, b)| a + t * b).collect() };
        let base = relu_pattern(s, p, x, m);
        let mut h = h0;
        while relu_pattern(s, &at(h), x, m) != base || relu_pattern(s, &at(-h), x, m) != base {
            h /= 2.0;
            assert!(
                h > 1e-10,
                "a ReLU sits on its kink at this point: no finite difference"
            );
        }
        h
    }

    fn check_against_finite_differences(s: &MlpSpec, seed: u64) {
        let m = 6;
        let (p, x, y) = setup(s, m, seed);
        let g = grad_at(s, &p, &x, &y, m);
        let fd: Vec<f64> = (0..p.len())
            .map(|i| {
                let mut e = vec![0.0; p.len()];
                e[i] = 1.0;
                let h = kink_free_step(s, &p, &e, &x, m, 1e-6);
                let mut pp = p.clone();
                pp[i] += h;
                let lp = loss_at(s, &pp, &x, &y, m);
                pp[i] -= 2.0 * h;
                let lm = loss_at(s, &pp, &x, &y, m);
                (lp - lm) / (2.0 * h)
            })
            .collect();
        let e = rel_err(&g, &fd);
        assert!(e < 1e-6, "gradient vs finite differences: {e:e} for {s:?}");

        // HVP against central differences of the gradient along v.
        let v = gaussian(p.len(), seed + 7);
        let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
        let mut hv = vec![0.0; p.len()];
        let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
        op.apply(&v, &mut hv);
        let h = kink_free_step(s, &p, &v, &x, m, 1e-5);
        let pp: Vec<f64> = p.iter().zip(&v).map(|(a, b)| a + h * b).collect();
        let pm: Vec<f64> = p.iter().zip(&v).map(|(a, b)| a - h * b).collect();
        let gp = grad_at(s, &pp, &x, &y, m);
        let gm = grad_at(s, &pm, &x, &y, m);
        let fd: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect();
        let e = rel_err(&hv, &fd);
        assert!(e < 1e-6, "HVP vs finite differences: {e:e} for {s:?}");
    }

    #[test]
    fn gradient_and_hvp_match_finite_differences_all_variants() {
        let mut seed = 0;
        for act in [Activation::Relu, Activation::Tanh, Activation::Linear] {
            for param in [
                Parameterization::Sp,
                Parameterization::Ntk,
                Parameterization::Mup,
            ] {
                for bias in [false, true] {
                    for depth in [1, 2, 4] {
                        seed += 10;
                        check_against_finite_differences(&spec(act, param, bias, depth, 4), seed);
                    }
                }
            }
        }
    }

    #[test]
    fn finite_differences_step_inside_one_relu_piece() {
        // A ReLU preactivation lies within 1e-5 of its kink along v here: a fixed step of 1e-5
        // crossed it and the difference quotient was off by a factor ~1e5.
        let s = spec(Activation::Relu, Parameterization::Sp, false, 2, 5);
        let (p, x, _) = setup(&s, 6, 450);
        let v = gaussian(p.len(), 457);
        let h = kink_free_step(&s, &p, &v, &x, 6, 1e-5);
        assert!(h < 1e-5, "the step was not shortened: {h}");
        check_against_finite_differences(&s, 450);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn hvp_matches_finite_differences_on_random_networks(
            act in prop_oneof![Just(Activation::Relu), Just(Activation::Tanh), Just(Activation::Linear)],
            ntk in any::<bool>(), bias in any::<bool>(), depth in 1usize..5, width in 1usize..7, seed in 0u64..1000,
        ) {
            let param = if ntk { Parameterization::Ntk } else { Parameterization::Sp };
            check_against_finite_differences(&spec(act, param, bias, depth, width), seed);
        }
    }

    /// The outputs of the network at `p` on `x` (m examples), as f64.
    fn outputs(s: &MlpSpec, p: &[f64], x: &[f64], m: usize) -> Vec<f64> {
        let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
        ws.forward(p, x, m);
        ws.output()[..s.outputs * m].to_vec()
    }

    /// loss_scale/(m·k) · JᵀJ with J the central-difference Jacobian of the outputs.
    fn gauss_newton_by_differences(s: &MlpSpec, p: &[f64], x: &[f64], m: usize) -> Vec<Vec<f64>> {
        let h = 1e-6;
        let cols: Vec<Vec<f64>> = (0..p.len())
            .map(|j| {
                let (mut a, mut b) = (p.to_vec(), p.to_vec());
                a[j] += h;
                b[j] -= h;
                let (fa, fb) = (outputs(s, &a, x, m), outputs(s, &b, x, m));
                fa.iter()
                    .zip(&fb)
                    .map(|(u, v)| (u - v) / (2.0 * h))
                    .collect()
            })
            .collect();
        let c = s.net.loss_scale / (m * s.outputs) as f64;
        (0..p.len())
            .map(|i| {
                (0..p.len())
                    .map(|j| {
                        c * cols[i]
                            .iter()
                            .zip(&cols[j])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn gauss_newton_products_match_the_jacobian_by_finite_differences() {
        let mut seed = 500;
        for act in [Activation::Relu, Activation::Tanh, Activation::Linear] {
            for param in [Parameterization::Sp, Parameterization::Ntk] {
                for (depth, bias) in [(2, false), (3, true)] {
                    seed += 7;
                    let s = spec(act, param, bias, depth, 3);
                    let m = 4;
                    let (p, x, y) = setup(&s, m, seed);
                    let want = gauss_newton_by_differences(&s, &p, &x, m);
                    let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
                    let mut op = HvpOperator::of(&p, &x, &y, m, &mut ws, Curvature::GaussNewton);
                    let v = gaussian(p.len(), seed + 1);
                    let mut gv = vec![0.0; p.len()];
                    op.apply(&v, &mut gv);
                    let wv: Vec<f64> = want
                        .iter()
                        .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
                        .collect();
                    let e = rel_err(&gv, &wv);
                    assert!(e < 1e-6, "GN vs JᵀJ: {e:e} for {s:?}");
                    // G is positive semi-definite.
                    let eigs = dense_eigenvalues(&mut op);
                    assert!(eigs[0] >= -1e-10 * eigs.last().unwrap().abs(), "{eigs:?}");
                }
            }
        }
    }

    #[test]
    fn gauss_newton_is_the_hessian_for_a_linear_model_and_at_zero_error() {
        // One layer: the outputs are linear in θ, so H = G exactly.
        let s = spec(Activation::Relu, Parameterization::Sp, true, 1, 4);
        let m = 5;
        let (p, x, y) = setup(&s, m, 77);
        let v = gaussian(p.len(), 78);
        let (mut hv, mut gv) = (vec![0.0; p.len()], vec![0.0; p.len()]);
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        HvpOperator::new(&p, &x, &y, m, &mut ws).apply(&v, &mut hv);
        HvpOperator::of(&p, &x, &y, m, &mut ws, Curvature::GaussNewton).apply(&v, &mut gv);
        assert_eq!(hv, gv);
        // Zero training error (targets = outputs): the residual term vanishes, H = G, and
        // the top eigenvalues agree; elsewhere they differ.
        for act in [Activation::Tanh, Activation::Relu] {
            let s = spec(act, Parameterization::Ntk, false, 3, 4);
            let (p, x, y) = setup(&s, m, 79);
            let fit = outputs(&s, &p, &x, m);
            let top = |y: &[f64], c: Curvature| {
                let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
                let mut op = HvpOperator::of(&p, &x, y, m, &mut ws, c);
                *dense_eigenvalues(&mut op).last().unwrap()
            };
            let (h, g) = (
                top(&fit, Curvature::Hessian),
                top(&fit, Curvature::GaussNewton),
            );
            assert!(((h - g) / g).abs() < 1e-10, "{act:?}: {h} vs {g}");
            let (h, g) = (top(&y, Curvature::Hessian), top(&y, Curvature::GaussNewton));
            assert!(((h - g) / g).abs() > 1e-6, "{act:?}: {h} vs {g}");
        }
    }

    #[test]
    fn top_k_and_smallest_eigenvalues_match_the_dense_oracle_on_tiny_networks() {
        use crate::hessian::{block_top_k, BlockOptions, Negated};
        let opts = BlockOptions {
            tol: 1e-10,
            max_iter: 2000,
            max_basis: 60,
            seed: 1,
        };
        let mut seed = 900;
        for act in [Activation::Tanh, Activation::Relu] {
            for param in [Parameterization::Sp, Parameterization::Ntk] {
                seed += 3;
                let s = spec(act, param, true, 3, 4);
                let m = 6;
                let (p, x, y) = setup(&s, m, seed);
                for curvature in [Curvature::Hessian, Curvature::GaussNewton] {
                    let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
                    let mut op = HvpOperator::of(&p, &x, &y, m, &mut ws, curvature);
                    let eigs = dense_eigenvalues(&mut op);
                    let scale = eigs.iter().fold(0.0f64, |a, e| a.max(e.abs()));
                    let got = block_top_k(&mut op, 4, &[], &opts);
                    for i in 0..4 {
                        let want = eigs[eigs.len() - 1 - i];
                        assert!(
                            (got.values[i] - want).abs() < 1e-7 * scale,
                            "{act:?} {param:?} {curvature:?} λ{i}: {} vs {want}",
                            got.values[i]
                        );
                    }
                    let low = lanczos_top(&mut Negated(&mut op), None, &exact());
                    assert!(
                        (-low.value - eigs[0]).abs() < 1e-7 * scale,
                        "{act:?} {param:?} {curvature:?} min: {} vs {}",
                        -low.value,
                        eigs[0]
                    );
                }
            }
        }
        // A linear one-layer net with 3 outputs: H = c·XXᵀ ⊗ I₃, every eigenvalue three
        // times. The block finds the top one thrice, then the next.
        let s = spec(Activation::Linear, Parameterization::Sp, false, 1, 4);
        let m = 8;
        let (p, x, y) = setup(&s, m, 5);
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
        let eigs = dense_eigenvalues(&mut op);
        let n = eigs.len();
        assert!((eigs[n - 1] - eigs[n - 3]).abs() < 1e-12 * eigs[n - 1]);
        let got = block_top_k(&mut op, 4, &[], &opts);
        for i in 0..4 {
            assert!(
                (got.values[i] - eigs[n - 1 - i]).abs() < 1e-8 * eigs[n - 1],
                "{i}"
            );
        }
        assert!(
            got.values[3] < got.values[2] * (1.0 - 1e-6),
            "{:?}",
            got.values
        );
    }

    #[test]
    fn an_operator_on_cached_passes_is_the_built_one_bit_for_bit() {
        for (act, curvature) in [
            (Activation::Tanh, Curvature::Hessian),
            (Activation::Relu, Curvature::GaussNewton),
        ] {
            let s = spec(act, Parameterization::Sp, true, 3, 6);
            let m = 7;
            let (p, x, y) = setup(&s, m, 21);
            let v = gaussian(p.len(), 4);
            let product = |op: &mut HvpOperator<f64>| {
                let mut out = vec![0.0; v.len()];
                op.apply(&v, &mut out);
                (
                    op.loss().to_bits(),
                    out.iter().map(|o| o.to_bits()).collect::<Vec<_>>(),
                )
            };
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let built = product(&mut HvpOperator::of(&p, &x, &y, m, &mut ws, curvature));
            // After the operator's own passes, after a gradient's, and after another
            // operator has been applied on them.
            let again = product(&mut HvpOperator::cached(&p, &x, &y, m, &mut ws, curvature));
            let mut g = vec![0.0; p.len()];
            let mut ws2 = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            ws2.loss_and_grad(&p, &x, &y, m, &mut g);
            let after_grad = product(&mut HvpOperator::cached(&p, &x, &y, m, &mut ws2, curvature));
            assert_eq!(built, again, "{act:?}");
            assert_eq!(built, after_grad, "{act:?}");
        }
    }

    #[test]
    fn hessian_is_symmetric() {
        for act in [Activation::Relu, Activation::Tanh] {
            let s = spec(act, Parameterization::Ntk, true, 3, 5);
            let m = 7;
            let (p, x, y) = setup(&s, m, 3);
            let u = gaussian(p.len(), 11);
            let v = gaussian(p.len(), 12);
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
            let (mut hu, mut hv) = (vec![0.0; p.len()], vec![0.0; p.len()]);
            op.apply(&u, &mut hu);
            op.apply(&v, &mut hv);
            let a: f64 = u.iter().zip(&hv).map(|(a, b)| a * b).sum();
            let b: f64 = v.iter().zip(&hu).map(|(a, b)| a * b).sum();
            assert!((a - b).abs() <= 1e-12 * a.abs().max(b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn cached_operator_agrees_with_fresh_operators() {
        let s = spec(Activation::Tanh, Parameterization::Sp, true, 3, 6);
        let m = 9;
        let (p, x, y) = setup(&s, m, 5);
        let vs: Vec<Vec<f64>> = (0..3).map(|i| gaussian(p.len(), 40 + i)).collect();
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        let mut cached = HvpOperator::new(&p, &x, &y, m, &mut ws);
        let mut out_cached = Vec::new();
        for v in vs.iter().chain(vs.iter()) {
            let mut o = vec![0.0; p.len()];
            cached.apply(v, &mut o);
            out_cached.push(o);
        }
        for (i, v) in vs.iter().enumerate() {
            let mut ws2 = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let mut fresh = HvpOperator::new(&p, &x, &y, m, &mut ws2);
            let mut o = vec![0.0; p.len()];
            fresh.apply(v, &mut o);
            assert_eq!(o, out_cached[i], "cached product {i} differs");
            assert_eq!(o, out_cached[i + 3], "repeated product {i} differs");
        }
    }

    #[test]
    fn f32_agrees_with_f64_to_f32_accuracy() {
        let s = spec(Activation::Relu, Parameterization::Sp, false, 3, 16);
        let m = 32;
        let (p, x, y) = setup(&s, m, 8);
        let v = gaussian(p.len(), 9);
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
        let mut hv64 = vec![0.0; p.len()];
        op.apply(&v, &mut hv64);
        let (p32, x32, y32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            p.iter().map(|a| *a as f32).collect(),
            x.iter().map(|a| *a as f32).collect(),
            y.iter().map(|a| *a as f32).collect(),
        );
        let mut ws32 = MlpWorkspace::<f32>::new(&s, m, Par::Seq);
        let mut op32 = HvpOperator::new(&p32, &x32, &y32, m, &mut ws32);
        let mut hv32 = vec![0.0; p.len()];
        op32.apply(&v, &mut hv32);
        let e = rel_err(&hv32, &hv64);
        assert!(e < 1e-5 && e > 0.0, "f32 vs f64 HVP: {e:e}");
        assert!(((op32.loss() - op.loss()) / op.loss()).abs() < 1e-6);
    }

    #[test]
    fn lanczos_matches_dense_oracle_on_tiny_networks() {
        for (i, act) in [Activation::Relu, Activation::Tanh, Activation::Linear]
            .into_iter()
            .enumerate()
        {
            let s = spec(act, Parameterization::Sp, i == 1, 3, 4);
            let m = 8;
            let (p, x, y) = setup(&s, m, 20 + i as u64);
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
            let eigs = dense_eigenvalues(&mut op);
            let top = *eigs.last().unwrap();
            let est = lanczos_top(&mut op, None, &exact());
            assert!(
                ((est.value - top) / top).abs() < 1e-8,
                "{act:?}: {} vs {top}",
                est.value
            );
            // a ReLU/tanh Hessian has negative eigenvalues: the test means something
            if act != Activation::Linear {
                assert!(eigs[0] < 0.0);
            }
        }
    }

    /// A tiny network under the softmax cross-entropy.
    fn ce_spec(act: Activation, param: Parameterization, bias: bool, depth: usize) -> MlpSpec {
        let mut s = spec(act, param, bias, depth, 4);
        s.net.loss = Loss::CrossEntropy;
        s
    }

    /// One-hot targets for m examples of k classes.
    fn one_hot(k: usize, m: usize, seed: u64) -> Vec<f64> {
        let mut y = vec![0.0; k * m];
        for j in 0..m {
            y[j * k + (j * 7 + seed as usize) % k] = 1.0;
        }
        y
    }

    #[test]
    fn cross_entropy_gradient_and_hvp_match_finite_differences() {
        // `setup`'s Gaussian targets exercise the general soft-target form (s_j ≠ 1).
        let mut seed = 900;
        for act in [Activation::Relu, Activation::Tanh, Activation::Linear] {
            for param in [Parameterization::Sp, Parameterization::Ntk] {
                for (bias, depth) in [(false, 1), (true, 2), (false, 3)] {
                    seed += 10;
                    check_against_finite_differences(&ce_spec(act, param, bias, depth), seed);
                }
            }
        }
        // One-hot targets: L = −α/m Σ log p_label, by hand.
        let s = ce_spec(Activation::Tanh, Parameterization::Sp, true, 2);
        let m = 5;
        let (p, x, _) = setup(&s, m, 31);
        let y = one_hot(s.outputs, m, 2);
        let f = outputs(&s, &p, &x, m);
        let k = s.outputs;
        let want: f64 = (0..m)
            .map(|j| {
                let col = &f[j * k..(j + 1) * k];
                let label = (0..k).find(|&i| y[j * k + i] == 1.0).unwrap();
                let z: f64 = col.iter().map(|v| v.exp()).sum();
                -(col[label].exp() / z).ln()
            })
            .sum::<f64>()
            / m as f64;
        assert!((loss_at(&s, &p, &x, &y, m) - want).abs() < 1e-12 * want);
    }

    #[test]
    fn cross_entropy_hessian_matches_the_dense_oracle_and_its_gauss_newton_part() {
        let m = 4;
        for (i, act) in [Activation::Relu, Activation::Tanh].into_iter().enumerate() {
            let s = ce_spec(act, Parameterization::Ntk, i == 1, 3);
            let (p, x, _) = setup(&s, m, 40 + i as u64);
            let y = one_hot(s.outputs, m, i as u64);
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
            // Symmetric, and Lanczos finds the dense top eigenvalue.
            let h = dense_matrix(&mut op);
            let n = p.len();
            for a in 0..n {
                for b in 0..a {
                    let (u, v) = (h[(a, b)], h[(b, a)]);
                    assert!((u - v).abs() <= 1e-10 * u.abs().max(v.abs()).max(1e-8));
                }
            }
            let eigs = dense_eigenvalues(&mut op);
            let top = *eigs.last().unwrap();
            let opts = exact();
            let est = lanczos_top(&mut op, None, &opts);
            assert!(
                ((est.value - top) / top).abs() < 1e-8,
                "{} vs {top}",
                est.value
            );
            // Gauss-Newton: Jᵀ M J v with M = α/m (diag p − p pᵀ) per example, J by
            // central differences of the outputs.
            let f = outputs(&s, &p, &x, m);
            let k = s.outputs;
            let hstep = 1e-6;
            let cols: Vec<Vec<f64>> = (0..n)
                .map(|c| {
                    let (mut a, mut b) = (p.clone(), p.clone());
                    a[c] += hstep;
                    b[c] -= hstep;
                    let (fa, fb) = (outputs(&s, &a, &x, m), outputs(&s, &b, &x, m));
                    fa.iter()
                        .zip(&fb)
                        .map(|(u, v)| (u - v) / (2.0 * hstep))
                        .collect()
                })
                .collect();
            let v = gaussian(n, 50 + i as u64);
            let mut jv = vec![0.0; k * m];
            for (c, col) in cols.iter().enumerate() {
                for (o, d) in jv.iter_mut().zip(col) {
                    *o += d * v[c];
                }
            }
            let mut mjv = vec![0.0; k * m];
            for j in 0..m {
                let col = &f[j * k..(j + 1) * k];
                let z: f64 = col.iter().map(|t| t.exp()).sum();
                let pr: Vec<f64> = col.iter().map(|t| t.exp() / z).collect();
                let dot: f64 = pr
                    .iter()
                    .zip(&jv[j * k..(j + 1) * k])
                    .map(|(a, b)| a * b)
                    .sum();
                for r in 0..k {
                    mjv[j * k + r] = pr[r] * (jv[j * k + r] - dot) / m as f64;
                }
            }
            let want: Vec<f64> = cols
                .iter()
                .map(|col| col.iter().zip(&mjv).map(|(a, b)| a * b).sum())
                .collect();
            let mut gv = vec![0.0; n];
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            HvpOperator::of(&p, &x, &y, m, &mut ws, Curvature::GaussNewton).apply(&v, &mut gv);
            let e = rel_err(&gv, &want);
            assert!(e < 1e-6, "{act:?}: GN vs Jᵀ M J: {e:e}");
            // G ⪰ 0 while H has negative curvature.
            let mut g_op = HvpOperator::of(&p, &x, &y, m, &mut ws, Curvature::GaussNewton);
            let g_eigs = dense_eigenvalues(&mut g_op);
            assert!(
                g_eigs[0] >= -1e-10 * g_eigs.last().unwrap().abs(),
                "{g_eigs:?}"
            );
            assert!(eigs[0] < 0.0, "{eigs:?}");
        }
    }

    #[test]
    fn ten_parameter_network_does_not_panic() {
        let s = MlpSpec {
            outputs: 2,
            ..spec(Activation::Relu, Parameterization::Sp, false, 1, 1)
        };
        assert_eq!(s.n_params(), 10);
        let m = 3;
        let (p, x, y) = setup(&s, m, 1);
        let y = &y[..2 * m];
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        let mut op = HvpOperator::new(&p, &x, y, m, &mut ws);
        let est = lanczos_top(&mut op, None, &LanczosOptions::default());
        let top = *dense_eigenvalues(&mut op).last().unwrap();
        assert!(est.applications <= 10);
        assert!(((est.value - top) / top).abs() < 1e-8);
    }

    #[test]
    fn one_layer_linear_sharpness_is_input_second_moment() {
        for param in [Parameterization::Sp, Parameterization::Ntk] {
            let s = spec(Activation::Linear, param, false, 1, 1);
            let m = 20;
            let (p, x, y) = setup(&s, m, 2);
            // Independent: top eigenvalue of Σ = X Xᵀ/m (power iteration in plain loops).
            let d = s.input_dim;
            let mut sigma = vec![0.0; d * d];
            for e in 0..m {
                for i in 0..d {
                    for j in 0..d {
                        sigma[i * d + j] += x[e * d + i] * x[e * d + j] / m as f64;
                    }
                }
            }
            let mut v = vec![1.0; d];
            let mut lam = 0.0;
            for _ in 0..2000 {
                let w: Vec<f64> = (0..d)
                    .map(|i| (0..d).map(|j| sigma[i * d + j] * v[j]).sum())
                    .collect();
                lam = w.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>()
                    / v.iter().map(|a| a * a).sum::<f64>();
                let n = w.iter().map(|a| a * a).sum::<f64>().sqrt();
                v = w.iter().map(|a| a / n).collect();
            }
            let s2 = match param {
                // μP with one layer is sp (no hidden width to scale).
                Parameterization::Sp | Parameterization::Mup => 1.0,
                Parameterization::Ntk => s.net.sigma2_readout / d as f64,
            };
            let expected = s2 * lam / s.outputs as f64;
            let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
            let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
            let est = lanczos_top(
                &mut op,
                None,
                &LanczosOptions {
                    tol: 1e-12,
                    max_iter: 200,
                    ..Default::default()
                },
            );
            assert!(
                ((est.value - expected) / expected).abs() < 1e-9,
                "{param:?}: {} vs {expected}",
                est.value
            );
        }
    }

    #[test]
    fn zero_readout_gives_loss_one_twentieth() {
        let mut s = MlpSpec::new(7, 8, 3, 10);
        s.net.readout = Readout::Zero;
        let m = 13;
        let p: Vec<f64> = init_params(&s, 4);
        let x = gaussian(7 * m, 5);
        let mut y = vec![0.0; 10 * m];
        for e in 0..m {
            y[e * 10 + (e * 3) % 10] = 1.0;
        }
        let mut ws = MlpWorkspace::<f64>::new(&s, m, Par::Seq);
        ws.forward(&p, &x, m);
        assert_eq!(ws.loss(&y), 0.05);
        let mut ws32 = MlpWorkspace::<f32>::new(&s, m, Par::Seq);
        let p32: Vec<f32> = init_params(&s, 4);
        let x32: Vec<f32> = x.iter().map(|a| *a as f32).collect();
        let y32: Vec<f32> = y.iter().map(|a| *a as f32).collect();
        ws32.forward(&p32, &x32, m);
        assert!((ws32.loss(&y32) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn loss_scale_scales_loss_gradient_and_sharpness() {
        let base = spec(Activation::Relu, Parameterization::Sp, false, 3, 6);
        let m = 10;
        let (p, x, y) = setup(&base, m, 6);
        let alpha = 7.25;
        let mut scaled = base.clone();
        scaled.net.loss_scale = alpha;
        let top = |s: &MlpSpec| {
            let mut ws = MlpWorkspace::<f64>::new(s, m, Par::Seq);
            let mut op = HvpOperator::new(&p, &x, &y, m, &mut ws);
            (
                op.loss(),
                lanczos_top(
                    &mut op,
                    None,
                    &LanczosOptions {
                        tol: 1e-12,
                        max_iter: 300,
                        ..Default::default()
                    },
                )
                .value,
            )
        };
        let (l1, s1) = top(&base);
        let (l2, s2) = top(&scaled);
        assert!((l2 / l1 - alpha).abs() < 1e-12);
        assert!((s2 / s1 - alpha).abs() < 1e-9, "{} vs {alpha}", s2 / s1);
    }

    #[test]
    fn loss_over_chunks_equals_one_pass() {
        let s = spec(Activation::Tanh, Parameterization::Sp, true, 3, 5);
        let n = 23;
        let (p, x, y) = setup(&s, n, 3);
        let whole = loss_at(&s, &p, &x, &y, n);
        let mut ws = MlpWorkspace::<f64>::new(&s, 5, Par::Seq);
        let chunked = ws.loss_over(&p, &x, &y, s.input_dim);
        assert!(((whole - chunked) / whole).abs() < 1e-13);
    }
}
