"""Independent reference for `benches/trajectory.rs`: the same trajectory with the authors'
method, in JAX on one core.

d = 4 (784 -> 512 -> 512 -> 512 -> 10), ReLU, standard parameterization (W ~ N(0, 2/fan_in),
readout N(0, 1/fan_in), no bias), MSE 1/(2 m k) sum (f - y)^2 on one-hot targets, real Fashion-MNIST (the Debian
package; each example standardized over its features), n = 4096 training examples, sharpness
on a fixed measurement set of 2048, SGD with B = 512 and eta = c / lambda0 (c = 4), 10 steps,
float32. After every step: the training loss on the n examples and the sharpness by 20 Lanczos
steps (full reorthogonalization) of the Hessian-vector product jvp(grad(loss)), as the authors'
code computes it. lambda0 the same way, once, before the timed part (sharpsweep also measures
it once per network, shared by every c).

Compile time is excluded: one untimed trajectory first compiles every function, then
`--repeats` timed trajectories run (median reported). One core: run under `taskset -c 0` with
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
(`benches/reference.sh` does all of this).
"""

import argparse
import gzip
import statistics
import time

import numpy as np
import jax
import jax.flatten_util
import jax.numpy as jnp

DATA = "/usr/share/datasets/fashion-mnist"


def load(n):
    with gzip.open(f"{DATA}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float64)
    with gzip.open(f"{DATA}/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    y = np.eye(10)[labels]
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def init(key, widths):
    # sharpsweep's defaults: sigma2_hidden = 2, sigma2_readout = 1
    params = []
    for l, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        key, sub = jax.random.split(key)
        sigma2 = 1.0 if l == len(widths) - 2 else 2.0
        params.append(jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * np.sqrt(sigma2 / fan_in))
    return params


def apply(params, x):
    for w in params[:-1]:
        x = jax.nn.relu(x @ w)
    return x @ params[-1]


def loss(params, x, y):
    return 0.5 * jnp.mean((apply(params, x) - y) ** 2)


def make(steps_lanczos):
    grad = jax.grad(loss)

    def hvp(params, v, x, y):
        return jax.jvp(lambda p: grad(p, x, y), (params,), (v,))[1]

    @jax.jit
    def lanczos(params, v0, x, y):
        flat0, unravel = jax.flatten_util.ravel_pytree(params)
        n = flat0.shape[0]
        q = jnp.zeros((steps_lanczos + 1, n), jnp.float32)
        q = q.at[0].set(v0 / jnp.linalg.norm(v0))
        alpha = jnp.zeros(steps_lanczos, jnp.float32)
        beta = jnp.zeros(steps_lanczos, jnp.float32)

        def body(j, state):
            q, alpha, beta = state
            w = jax.flatten_util.ravel_pytree(hvp(params, unravel(q[j]), x, y))[0]
            a = jnp.dot(w, q[j])
            w = w - a * q[j] - jnp.where(j > 0, beta[j - 1], 0.0) * q[jnp.maximum(j - 1, 0)]
            # full reorthogonalization against the basis so far (rows > j are zero)
            w = w - q.T @ (q @ w)
            b = jnp.linalg.norm(w)
            q = q.at[j + 1].set(w / b)
            return q, alpha.at[j].set(a), beta.at[j].set(b)

        q, alpha, beta = jax.lax.fori_loop(0, steps_lanczos, body, (q, alpha, beta))
        return alpha, beta

    @jax.jit
    def sgd(params, x, y, eta):
        g = grad(params, x, y)
        return jax.tree_util.tree_map(lambda p, gi: p - eta * gi, params, g)

    full_loss = jax.jit(loss)
    return lanczos, sgd, full_loss


def top_eigenvalue(alpha, beta):
    t = np.diag(np.asarray(alpha, np.float64))
    off = np.asarray(beta[:-1], np.float64)
    t += np.diag(off, 1) + np.diag(off, -1)
    return float(np.linalg.eigvalsh(t)[-1])


def trajectory(params, x, y, xm, ym, eta, steps, batch, lanczos, sgd, full_loss, key):
    out = []
    n = x.shape[0]
    perm = np.random.default_rng(1).permutation(n)
    for t in range(steps):
        idx = perm[(t * batch) % n:(t * batch) % n + batch]
        params = sgd(params, x[idx], y[idx], eta)
        train_loss = float(full_loss(params, x, y))
        key, sub = jax.random.split(key)
        v0 = jax.random.normal(sub, (sum(p.size for p in params),), jnp.float32)
        alpha, beta = lanczos(params, v0, xm, ym)
        out.append((train_loss, top_eigenvalue(alpha, beta)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lanczos", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--c", type=float, default=4.0)
    ap.add_argument("--synthetic", action="store_true",
                    help="Gaussian 3072-d inputs (CIFAR-shaped), random one-hot labels, "
                         "instead of Fashion-MNIST")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--m", type=int, default=2048)
    args = ap.parse_args()
    if args.synthetic:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.n, 3072))
        x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
        y = np.eye(10)[rng.integers(0, 10, args.n)]
        x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    else:
        x, y = load(args.n)
    xm, ym = x[:args.m], y[:args.m]
    widths = [x.shape[1]] + [args.width] * (args.depth - 1) + [10]
    params = init(jax.random.PRNGKey(0), widths)
    lanczos, sgd, full_loss = make(args.lanczos)
    v0 = jax.random.normal(jax.random.PRNGKey(1), (sum(p.size for p in params),), jnp.float32)
    lam0 = top_eigenvalue(*lanczos(params, v0, xm, ym))
    eta = args.c / lam0
    print(f"jax {jax.__version__}, devices {jax.devices()}, lambda0 = {lam0:.4f}")
    t0 = time.perf_counter()
    trajectory(params, x, y, xm, ym, eta, args.steps, 512, lanczos, sgd, full_loss, jax.random.PRNGKey(2))
    print(f"compile + first trajectory: {time.perf_counter() - t0:.2f} s (not counted)")
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        out = trajectory(params, x, y, xm, ym, eta, args.steps, 512, lanczos, sgd, full_loss,
                         jax.random.PRNGKey(2))
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
        print(f"run {r}: {times[-1]:.2f} s; lambda_t = {[round(o[1], 3) for o in out]}")
    med = statistics.median(times)
    hvps = args.steps * args.lanczos
    print(f"reference trajectory: median {med:.2f} s over {args.repeats} runs, "
          f"{hvps} HVPs ({med / hvps * 1000:.1f} ms per HVP incl. Lanczos)")


if __name__ == "__main__":
    main()
