//! The kernels on burn-flex tensors, and as an autodiff operation of `Autodiff<Flex>` whose
//! backward pass calls [`kernels::input_grad`], [`kernels::weight_grad`] and
//! [`kernels::bias_grad`] (burn's own `Backward` pattern for custom kernels).

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Bytes, DType, Shape};

use crate::norm::Activation;
use crate::pool::{self, PoolGeometry};
use crate::{ConvGeometry, kernels, norm};

/// The autodiff backend whose convolutions this module implements.
pub(crate) type FlexAutodiff = burn::backend::Autodiff<Flex, NoCheckpointing>;

/// The tensor's values as a contiguous `f32` slice (borrowed when already contiguous).
fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("contiguous")
                .to_vec(),
        ),
    }
}

fn tensor(values: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims.to_vec())),
        DType::F32,
    )
}

/// `conv(x, weight) + bias` on flex tensors (all `f32`).
pub(crate) fn forward(
    g: &ConvGeometry,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let bias = bias.map(values);
    let y = kernels::forward(g, &values(x), &values(weight), bias.as_deref());
    tensor(y, &g.y_dims())
}

/// The backward step: the parents are `[x, weight]` or `[x, weight, bias]`; only the
/// gradients of tracked parents are computed.
#[derive(Debug)]
struct ConvBackward;

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    type State = (NodeId, NodeId, ConvGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let dy = values(&dy);
        let (x_state, weight_state, g) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);
        let mut parents = ops.parents.into_iter();
        if let Some(node) = parents.next().flatten() {
            let dx = kernels::input_grad(&g, &values(&weight), &dy);
            grads.register::<Flex>(node.id, tensor(dx, &g.x_dims()));
        }
        if let Some(node) = parents.next().flatten() {
            let dw = kernels::weight_grad(&g, &values(&x), &dy);
            grads.register::<Flex>(node.id, tensor(dw, &g.weight_dims()));
        }
        if let Some(node) = parents.next().flatten() {
            let db = kernels::bias_grad(&g, &dy);
            grads.register::<Flex>(node.id, tensor(db, &[g.out_channels]));
        }
    }
}

/// `conv(x, weight) + bias` on `Autodiff<Flex>`, recording [`ConvBackward`].
pub(crate) fn forward_autodiff(
    g: &ConvGeometry,
    x: FloatTensor<FlexAutodiff>,
    weight: FloatTensor<FlexAutodiff>,
    bias: Option<FloatTensor<FlexAutodiff>>,
) -> FloatTensor<FlexAutodiff> {
    let run = |bias: Option<&FloatTensor<FlexAutodiff>>| {
        forward(
            g,
            &x.primitive,
            &weight.primitive,
            bias.map(|b| &b.primitive),
        )
    };
    match bias {
        Some(bias) => {
            let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
            match ConvBackward
                .prepare::<NoCheckpointing>(nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&weight), *g);
                    let y = run(Some(&bias));
                    prep.finish(state, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(run(Some(&bias))),
            }
        }
        None => {
            let nodes = [x.node.clone(), weight.node.clone()];
            match ConvBackward
                .prepare::<NoCheckpointing>(nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&weight), *g);
                    let y = run(None);
                    prep.finish(state, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(run(None)),
            }
        }
    }
}

/// `[B, C, P]` of a 4-D tensor.
fn planes(dims: &[usize]) -> [usize; 3] {
    [dims[0], dims[1], dims[2] * dims[3]]
}

fn dims_of(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

/// The backward step of [`batch_norm_train_autodiff`]: parents `[x, γ, β]`.
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// `(x, γ, statistics, activation, output)`; the output only with an activation.
    type State = (
        NodeId,
        NodeId,
        norm::BatchStats,
        Activation,
        Option<FlexTensor>,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, stats, act, y) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma_state);
        let dims = dims_of(&x);
        let (dx, dgamma, dbeta) = norm::batch_norm_train_backward(
            planes(&dims),
            &values(&x),
            &values(&gamma),
            &stats,
            &values(&dy),
            (act, y.as_ref().map(values).as_deref()),
        );
        let [node_x, node_gamma, node_beta] = ops.parents;
        let c = dims[1];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, &dims));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(dgamma, &[c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(dbeta, &[c]));
        }
    }
}

/// Training-mode BatchNorm on `Autodiff<Flex>`: `(y, μ, σ²)`, the statistics as flex tensors
/// (constants, for the running averages).
pub(crate) fn batch_norm_train_autodiff(
    x: FloatTensor<FlexAutodiff>,
    gamma: FloatTensor<FlexAutodiff>,
    beta: FloatTensor<FlexAutodiff>,
    eps: f64,
    act: Activation,
) -> (FloatTensor<FlexAutodiff>, FlexTensor, FlexTensor) {
    let dims = dims_of(&x.primitive);
    let c = dims[1];
    let (y, stats) = norm::batch_norm_train(
        planes(&dims),
        &values(&x.primitive),
        &values(&gamma.primitive),
        &values(&beta.primitive),
        eps,
        act,
    );
    let (mean, var) = (
        tensor(stats.mean.clone(), &[c]),
        tensor(stats.var.clone(), &[c]),
    );
    let y = tensor(y, &dims);
    let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
    let out = match BatchNormBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let kept = (act != Activation::Identity).then(|| y.clone());
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&gamma),
                stats,
                act,
                kept,
            );
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (out, mean, var)
}

/// `y = act(x·scale_c + shift_c)` on flex.
pub(crate) fn channel_affine(
    x: &FlexTensor,
    scale: &FlexTensor,
    shift: &FlexTensor,
    act: Activation,
) -> FlexTensor {
    let dims = dims_of(x);
    let y = norm::channel_affine(
        planes(&dims),
        &values(x),
        &values(scale),
        &values(shift),
        act,
    );
    tensor(y, &dims)
}

/// `y = act(a + b)` on flex (equal shapes).
pub(crate) fn add_activation(a: &FlexTensor, b: &FlexTensor, act: Activation) -> FlexTensor {
    tensor(
        norm::add_activation(&values(a), &values(b), act),
        &dims_of(a),
    )
}

/// The backward step of [`add_activation_autodiff`]: parents `[a, b]`, the state the output.
#[derive(Debug)]
struct AddActivationBackward;

impl Backward<Flex, 2> for AddActivationBackward {
    type State = (FlexTensor, Activation);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (y, act) = ops.state;
        let g = tensor(
            norm::activation_grad(&values(&y), &values(&dy), act),
            &dims_of(&y),
        );
        let [node_a, node_b] = ops.parents;
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, g.clone());
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, g);
        }
    }
}

/// `y = act(a + b)` on `Autodiff<Flex>`, recording [`AddActivationBackward`].
pub(crate) fn add_activation_autodiff(
    a: FloatTensor<FlexAutodiff>,
    b: FloatTensor<FlexAutodiff>,
    act: Activation,
) -> FloatTensor<FlexAutodiff> {
    let y = add_activation(&a.primitive, &b.primitive, act);
    match AddActivationBackward
        .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((y.clone(), act), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// The STFPM layer loss on flex, `[1]`.
pub(crate) fn stfpm_layer_loss(teacher: &FlexTensor, student: &FlexTensor, eps: f64) -> FlexTensor {
    let dims = planes(&dims_of(student));
    let loss = norm::stfpm_layer_loss(dims, &values(teacher), &values(student), eps);
    tensor(vec![loss as f32], &[1])
}

/// The backward step of [`stfpm_layer_loss_autodiff`]: the one parent is the student (the
/// teacher is a constant).
#[derive(Debug)]
struct StfpmLossBackward;

impl Backward<Flex, 1> for StfpmLossBackward {
    type State = (FlexTensor, NodeId, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let upstream: FlexTensor = grads.consume::<Flex>(&ops.node);
        let upstream = values(&upstream)[0];
        let (teacher, student_state, eps) = ops.state;
        let student: FlexTensor = checkpointer.retrieve_node_output(student_state);
        let dims = dims_of(&student);
        let ds = norm::stfpm_layer_loss_grad(
            planes(&dims),
            &values(&teacher),
            &values(&student),
            eps,
            upstream,
        );
        let [node] = ops.parents;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, tensor(ds, &dims));
        }
    }
}

/// The STFPM layer loss on `Autodiff<Flex>` (gradient for the student only).
pub(crate) fn stfpm_layer_loss_autodiff(
    teacher: FlexTensor,
    student: FloatTensor<FlexAutodiff>,
    eps: f64,
) -> FloatTensor<FlexAutodiff> {
    let loss = stfpm_layer_loss(&teacher, &student.primitive, eps);
    match StfpmLossBackward
        .prepare::<NoCheckpointing>([student.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (teacher, prep.checkpoint(&student), eps);
            prep.finish(state, loss)
        }
        OpsKind::UnTracked(prep) => prep.finish(loss),
    }
}

/// Max pooling on flex (inference: no positions kept).
pub(crate) fn max_pool(g: &PoolGeometry, x: &FlexTensor) -> FlexTensor {
    tensor(pool::forward(g, &values(x)), &g.y_dims())
}

/// The backward step of [`max_pool_autodiff`]: the parent is the input; the state holds each
/// output's argmax.
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = (Vec<u32>, PoolGeometry);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (argmax, g) = ops.state;
        let [node] = ops.parents;
        if let Some(node) = node {
            let dx = pool::backward(&g, &argmax, &values(&dy));
            grads.register::<Flex>(
                node.id,
                tensor(dx, &[g.batch, g.channels, g.in_size[0], g.in_size[1]]),
            );
        }
    }
}

/// Max pooling on `Autodiff<Flex>`, recording [`MaxPoolBackward`].
pub(crate) fn max_pool_autodiff(
    g: &PoolGeometry,
    x: FloatTensor<FlexAutodiff>,
) -> FloatTensor<FlexAutodiff> {
    match MaxPoolBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, argmax) = pool::forward_with_argmax(g, &values(&x.primitive));
            prep.finish((argmax, *g), tensor(y, &g.y_dims()))
        }
        OpsKind::UnTracked(prep) => prep.finish(max_pool(g, &x.primitive)),
    }
}
