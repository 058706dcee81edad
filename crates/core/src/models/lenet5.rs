//! LeNet5 for `1×28×28` input: conv 1→6 5×5, max-pool 2, ReLU, conv 6→16 5×5, max-pool 2,
//! ReLU, FC 256→120→84→10 — 44,426 parameters.
use super::{layers, Initializer, Mode, Model, Params};
use crate::program::{Op, Program};
use candle_core::{Device, Result, Tensor};

struct LeNet5 {
    params: Params,
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    fc1: (Tensor, Tensor),
    fc2: (Tensor, Tensor),
    fc3: (Tensor, Tensor),
}

fn conv(
    p: &mut Params,
    init: &mut Initializer,
    name: &str,
    cin: usize,
    cout: usize,
    k: usize,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let fan_in = cin * k * k;
    let w = p.add(format!("{name}.weight"), init.fan_in_uniform((cout, cin, k, k), fan_in, dev)?);
    let b = p.add(format!("{name}.bias"), init.fan_in_uniform(cout, fan_in, dev)?);
    Ok((w, b))
}

fn fc(
    p: &mut Params,
    init: &mut Initializer,
    name: &str,
    fin: usize,
    fout: usize,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let w = p.add(format!("{name}.weight"), init.fan_in_uniform((fout, fin), fin, dev)?);
    let b = p.add(format!("{name}.bias"), init.fan_in_uniform(fout, fin, dev)?);
    Ok((w, b))
}

pub(super) fn build(init: &mut Initializer, dev: &Device) -> Result<Box<dyn Model>> {
    let mut p = Params::default();
    let conv1 = conv(&mut p, init, "conv1", 1, 6, 5, dev)?;
    let conv2 = conv(&mut p, init, "conv2", 6, 16, 5, dev)?;
    let fc1 = fc(&mut p, init, "fc1", 256, 120, dev)?;
    let fc2 = fc(&mut p, init, "fc2", 120, 84, dev)?;
    let fc3 = fc(&mut p, init, "fc3", 84, 10, dev)?;
    Ok(Box::new(LeNet5 { params: p, conv1, conv2, fc1, fc2, fc3 }))
}

impl Model for LeNet5 {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let x = layers::conv2d_max_pool_relu(x, &self.conv1.0, &self.conv1.1, 2)?;
        let x = layers::conv2d_max_pool_relu(&x, &self.conv2.0, &self.conv2.1, 2)?;
        let x = x.flatten_from(1)?;
        let x = layers::linear_relu(&x, &self.fc1.0, &self.fc1.1)?;
        let x = layers::linear_relu(&x, &self.fc2.0, &self.fc2.1)?;
        layers::linear(&x, &self.fc3.0, &self.fc3.1)
    }

    fn params(&self) -> &Params {
        &self.params
    }

    fn program(&self, mode: Mode) -> crate::Result<Program> {
        if let Mode::Calibrate { .. } = mode {
            return Err(crate::Error::config("mode", "lenet5 has no batch norm to calibrate"));
        }
        let p = &self.params;
        let mut prog = Program::new(p);
        for conv in ["conv1", "conv2"] {
            let (weight, bias) = (p.index(&format!("{conv}.weight"))?, p.index(&format!("{conv}.bias"))?);
            prog.push(Op::Conv2d { weight, bias, spec: Default::default() })
                .push(Op::MaxPool2d { k: 2 })
                .push(Op::Relu);
        }
        prog.push(Op::Flatten);
        for (i, fc) in ["fc1", "fc2", "fc3"].into_iter().enumerate() {
            prog.push(Op::Linear { weight: p.index(&format!("{fc}.weight"))?, bias: p.index(&format!("{fc}.bias"))? });
            if i < 2 {
                prog.push(Op::Relu);
            }
        }
        Ok(prog)
    }
}
