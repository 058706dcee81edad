//! Runs a [`Program`]: a forward pass (with tangents for forward mode), then a backward pass
//! (with second-order adjoints for Hessian–vector products).
use super::rules::{self, Step};
use super::{Act, Loss, Op, Program, Weights};
use crate::error::{Error, Result};
use crate::ops::{narrow, widen, Real};

/// The loss, logits and loss gradient of one batch.
#[derive(Debug, Clone)]
pub struct Gradient<T> {
    pub loss: f64,
    pub logits: Act<T>,
    pub grad: Weights<T>,
}

/// The gradient and the Hessian–vector product `H·v` of one batch's loss.
#[derive(Debug, Clone)]
pub struct Hvp<T> {
    pub loss: f64,
    pub grad: Weights<T>,
    pub hv: Weights<T>,
}

/// Logits and their directional derivative `J·v` (`N×C`).
#[derive(Debug, Clone)]
pub struct Jvp<T> {
    pub logits: Act<T>,
    pub tangent: Vec<T>,
}

/// The forward pass: the steps kept for the backward one, the logits and their tangent.
struct Tape<T> {
    steps: Vec<Step<T>>,
    logits: Act<T>,
    tangent: Option<Vec<T>>,
}

fn check_weights<T>(program: &Program, w: &[Vec<T>], what: &str) -> Result<()> {
    let sizes: Vec<usize> = program.param_shapes.iter().map(|s| s.iter().product()).collect();
    if w.len() != sizes.len() || w.iter().zip(&sizes).any(|(a, &n)| a.len() != n) {
        return Err(Error::Shape(format!(
            "{what}: {} tensors of sizes {:?} for a program with parameter sizes {sizes:?}",
            w.len(),
            w.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

fn run<T: Real>(program: &Program, w: &Weights<T>, v: Option<&Weights<T>>, x: &Act<T>) -> Result<Tape<T>> {
    check_weights(program, w, "weights")?;
    if let Some(v) = v {
        check_weights(program, v, "direction")?;
    }
    let (mut data, mut dims, mut tangent) = (x.data.clone(), x.dims.clone(), None);
    let mut steps = Vec::with_capacity(program.ops.len());
    for op in &program.ops {
        let (y, ydims, ty, step) = rules::forward(op, &program.param_shapes, w, v, data, dims, tangent)?;
        steps.push(step);
        (data, dims, tangent) = (y, ydims, ty);
    }
    Ok(Tape { steps, logits: Act { data, dims }, tangent })
}

/// The backward pass from `∂logits` (and its tangent): parameter gradients (and their tangents).
fn back<T: Real>(
    program: &Program,
    w: &Weights<T>,
    v: Option<&Weights<T>>,
    tape: &Tape<T>,
    gy: Vec<T>,
    rgy: Option<Vec<T>>,
) -> Result<(Weights<T>, Option<Weights<T>>)> {
    let zeros = || -> Weights<T> { w.iter().map(|p| vec![T::zero(); p.len()]).collect() };
    let mut grads = zeros();
    let mut rgrads = rgy.as_ref().map(|_| zeros());
    let (mut gy, mut rgy) = (gy, rgy);
    for (i, (op, step)) in program.ops.iter().zip(&tape.steps).enumerate().rev() {
        let (gx, rgx) =
            rules::backward(op, &program.param_shapes, w, v, step, gy, rgy, &mut grads, rgrads.as_mut(), i > 0)?;
        (gy, rgy) = (gx, rgx);
    }
    Ok((grads, rgrads))
}

fn check_loss<T>(loss: &Loss, logits: &Act<T>) -> Result<()> {
    if logits.dims != [loss.n(), loss.classes] {
        return Err(Error::Shape(format!(
            "a loss over {}×{} logits for a batch whose logits are {:?}",
            loss.n(),
            loss.classes,
            logits.dims
        )));
    }
    Ok(())
}

/// The loss of one batch and its gradient with respect to the parameters.
pub fn gradient<T: Real>(program: &Program, w: &Weights<T>, x: &Act<T>, loss: &Loss) -> Result<Gradient<T>> {
    let tape = run(program, w, None, x)?;
    check_loss(loss, &tape.logits)?;
    let (value, gz) = loss.value_and_grad(&widen(&tape.logits.data));
    let logits = tape.logits.clone();
    let (grad, _) = back(program, w, None, &tape, narrow(&gz), None)?;
    Ok(Gradient { loss: value, logits, grad })
}

/// `H·v` for the Hessian `H` of one batch's loss with respect to the parameters, exact
/// (forward-over-reverse), with the gradient on the way.
pub fn hvp<T: Real>(program: &Program, w: &Weights<T>, x: &Act<T>, loss: &Loss, v: &Weights<T>) -> Result<Hvp<T>> {
    let tape = run(program, w, Some(v), x)?;
    check_loss(loss, &tape.logits)?;
    let z = widen(&tape.logits.data);
    let (value, gz) = loss.value_and_grad(&z);
    let tz = widen(tape.tangent.as_deref().ok_or_else(|| Error::Internal("hvp: no logit tangent".into()))?);
    let rgz = loss.hessian_logits(&z, &tz);
    let (grad, hv) = back(program, w, Some(v), &tape, narrow(&gz), Some(narrow(&rgz)))?;
    Ok(Hvp { loss: value, grad, hv: hv.expect("second-order adjoints were requested") })
}

/// The logits and `J·v`, the derivative of the logits along parameter direction `v`.
pub fn jvp<T: Real>(program: &Program, w: &Weights<T>, x: &Act<T>, v: &Weights<T>) -> Result<Jvp<T>> {
    let tape = run(program, w, Some(v), x)?;
    let tangent = tape.tangent.ok_or_else(|| Error::Internal("jvp: no logit tangent".into()))?;
    Ok(Jvp { logits: tape.logits, tangent })
}

/// `Jᵀ·u`: the parameter gradient of `Σ u ⊙ logits` for an `N×C` cotangent `u`.
pub fn vjp<T: Real>(program: &Program, w: &Weights<T>, x: &Act<T>, u: &[T]) -> Result<Weights<T>> {
    Forward::new(program, w, x)?.vjp(program, w, u)
}

/// What a per-logit backward pass shows at one layer with parameters: its input, the cotangent
/// of its output, and per-sample parameter gradients on request.
pub struct LayerSignal<'a, T> {
    pub op_index: usize,
    pub op: &'a Op,
    pub input: &'a [T],
    pub input_dims: &'a [usize],
    /// Logits per sample.
    pub classes: usize,
    /// Set when max-pooling follows the layer: the cotangent at the pooled maxima. For the
    /// first op (LeNets' first convolution) the dense one ([`LayerSignal::grad_output`]) is then
    /// only routed back through the pooling if asked for.
    pub pooled: Option<Pooled<'a, T>>,
    /// The dense cotangent, when the backward pass made it.
    grad: Option<&'a [T]>,
    dense: std::sync::OnceLock<Vec<T>>,
    step: &'a Step<T>,
}

/// A layer's output cotangent where `k×k` max-pooling follows the layer: `grad` at the pooled
/// output (`N×C×⌊H/k⌋×⌊W/k⌋`), each value belonging to the first maximum of its window of the
/// layer's `output` (`N×C×H×W`).
pub struct Pooled<'a, T> {
    pub k: usize,
    pub output: &'a [T],
    pub output_dims: &'a [usize],
    pub grad: &'a [T],
}

impl<T: Real> LayerSignal<'_, T> {
    /// The cotangent of the layer's output (`N×…`, the output's shape).
    pub fn grad_output(&self) -> &[T] {
        match (self.grad, &self.pooled) {
            (Some(g), _) => g,
            // Not made: `logit_backprop` leaves out the dense cotangent only beside a pooled one.
            (None, None) => &[],
            (None, Some(p)) => self.dense.get_or_init(|| {
                // 4-D: `logit_backprop` pools only 4-D outputs.
                let (h, w) = (p.output_dims[2], p.output_dims[3]);
                crate::ops::kernels::max_pool_backward(p.output, p.grad, (h, w), p.k, false)
            }),
        }
    }

    /// `∂f_c(x_n)/∂θ` for this layer's parameters, as `(parameter index, gradient)` pairs.
    pub fn sample_param_grads(&self, program: &Program, w: &Weights<T>, n: usize) -> Result<Vec<(usize, Vec<T>)>> {
        rules::sample_param_grads(self.op, &program.param_shapes, w, self.step, self.grad_output(), n)
    }
}

/// One forward pass of `x`, then for each logit `c` one backward pass with cotangent `e_c` for
/// every sample, calling `visit(c, signal)` at each layer with parameters (last layer first).
/// Samples stay independent only when no layer mixes them (batch norm with batch statistics
/// does; its per-sample gradients are refused). A layer followed by max-pooling also gets its
/// cotangent at the pooled maxima ([`LayerSignal::pooled`]); for the first op, only that one.
pub fn logit_backprop<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x: &Act<T>,
    visit: &mut dyn FnMut(usize, &LayerSignal<T>) -> Result<()>,
) -> Result<Act<T>> {
    let tape = run(program, w, None, x)?;
    let (n, classes) = (tape.logits.dims[0], tape.logits.data.len() / tape.logits.dims[0].max(1));
    let mut scratch: Weights<T> = w.iter().map(|p| vec![T::zero(); p.len()]).collect();
    // `pool_after[i]`: the window of the max-pooling that follows layer i, if one does; the
    // layer's signal then carries the cotangent at the pooled maxima too. The first op's output
    // cotangent feeds no input gradient, so for it the pooling's backward is not run at all:
    // the dense cotangent (an array per logit, mostly zeros) is made only if the visitor asks.
    let pool_after: Vec<Option<usize>> = (0..program.ops.len())
        .map(|i| match program.ops.get(i + 1) {
            Some(Op::MaxPool2d { k }) if rules::has_params(&program.ops[i]) && tape.steps[i + 1].dims.len() == 4 => {
                Some(*k)
            }
            _ => None,
        })
        .collect();
    let pooled_first = pool_after.first().copied().flatten().is_some();
    for c in 0..classes {
        let mut gy = vec![T::zero(); n * classes];
        (0..n).for_each(|i| gy[i * classes + c] = T::one());
        // The cotangent at the output of a pooling that follows a layer with parameters.
        let mut at_pool: Vec<T> = Vec::new();
        for (i, (op, step)) in program.ops.iter().zip(&tape.steps).enumerate().rev() {
            if rules::has_params(op) {
                let pooled = pool_after[i].map(|k| Pooled {
                    k,
                    output: &tape.steps[i + 1].x[..],
                    output_dims: &tape.steps[i + 1].dims[..],
                    grad: &at_pool[..],
                });
                let dense = !(i == 0 && pooled_first);
                let signal = LayerSignal {
                    op_index: i,
                    op,
                    input: &step.x,
                    input_dims: &step.dims,
                    classes,
                    pooled,
                    grad: dense.then_some(&gy[..]),
                    dense: std::sync::OnceLock::new(),
                    step,
                };
                visit(c, &signal)?;
            }
            if i > 0 && pool_after[i - 1].is_some() {
                if i == 1 {
                    at_pool = std::mem::take(&mut gy);
                    continue;
                }
                at_pool.clone_from(&gy);
            }
            if i > 0 {
                gy = rules::input_grad(op, &program.param_shapes, w, step, gy, &mut scratch)?;
            }
        }
    }
    Ok(tape.logits)
}

/// A forward pass kept for repeated first-order products at fixed weights (the NTK's
/// `J·(Jᵀ·u)` in Lanczos): each VJP is then one backward pass and each JVP one tangent pass,
/// without recomputing the activations.
pub struct Forward<T> {
    tape: Tape<T>,
}

impl<T: Real> Forward<T> {
    pub fn new(program: &Program, w: &Weights<T>, x: &Act<T>) -> Result<Self> {
        Ok(Self { tape: run(program, w, None, x)? })
    }

    pub fn logits(&self) -> &Act<T> {
        &self.tape.logits
    }

    /// `Jᵀ·u` for an `N×C` cotangent `u`.
    pub fn vjp(&self, program: &Program, w: &Weights<T>, u: &[T]) -> Result<Weights<T>> {
        if u.len() != self.tape.logits.data.len() {
            return Err(Error::Shape(format!(
                "a cotangent of {} values for logits {:?}",
                u.len(),
                self.tape.logits.dims
            )));
        }
        Ok(back(program, w, None, &self.tape, u.to_vec(), None)?.0)
    }

    /// `J·v` (`N×C`).
    pub fn jvp(&self, program: &Program, w: &Weights<T>, v: &Weights<T>) -> Result<Vec<T>> {
        check_weights(program, v, "direction")?;
        let mut t: Option<Vec<T>> = None;
        for (op, step) in program.ops.iter().zip(&self.tape.steps) {
            t = Some(rules::tangent(op, &program.param_shapes, w, v, step, t.as_deref())?);
        }
        t.ok_or_else(|| Error::Internal("jvp: an empty program".into()))
    }
}
