//! The full anomaly map: layer maps, upsampling, product, optional smoothing.

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

use crate::{
    ScoringError, combine_layer_maps, ensemble_layer_maps, gaussian_smooth, stfpm_layer_map,
};

/// Which per-layer quantity of a student ensemble makes the anomaly map
/// ([`AnomalyMapConfig::ensemble_map`]).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum EnsembleMode {
    /// Regression error only, `e_k = 0.5·‖t̂ − mean_s ŝ_s‖²`.
    Error,
    /// Predictive variance only, `v_k = Σ_c var_s ŝ_s`.
    Variance,
    /// Their sum, `e_k + v_k` (the default).
    Sum,
}

/// Configuration of the image-level anomaly map of [`AnomalyMapConfig::stfpm_map`] and
/// [`AnomalyMapConfig::ensemble_map`]:
///
/// ```text
/// map = smooth_σ( Π_k upsample_bilinear(layer_map_k, output_size) )
/// ```
#[derive(Config, Debug)]
pub struct AnomalyMapConfig {
    /// `[H, W]` of the map, normally the network's input size.
    pub output_size: [usize; 2],
    /// σ (in output pixels) of the Gaussian smoothing of the final map
    /// ([`gaussian_smooth`]); `None` (the default) for no smoothing.
    pub smoothing_sigma: Option<f64>,
    /// The per-layer quantity of an ensemble; default [`EnsembleMode::Sum`]. Unused by
    /// [`stfpm_map`](Self::stfpm_map).
    #[config(default = "EnsembleMode::Sum")]
    pub ensemble_mode: EnsembleMode,
}

impl AnomalyMapConfig {
    /// Upsamples and multiplies the layer maps ([`combine_layer_maps`]), then smooths when
    /// [`smoothing_sigma`](Self::smoothing_sigma) is set.
    ///
    /// # Errors
    /// As [`combine_layer_maps`] and [`gaussian_smooth`].
    pub fn finish<B: Backend>(
        &self,
        layer_maps: Vec<Tensor<B, 4>>,
    ) -> Result<Tensor<B, 4>, ScoringError> {
        let map = combine_layer_maps(layer_maps, self.output_size)?;
        match self.smoothing_sigma {
            Some(sigma) => gaussian_smooth(map, sigma),
            None => Ok(map),
        }
    }

    /// STFPM anomaly map `[B, 1, H, W]` from the teacher's and the student's feature pyramids
    /// (`teacher[k]`, `student[k]`: `[B, C_k, h_k, w_k]`): [`stfpm_layer_map`] per layer, then
    /// [`finish`](Self::finish).
    ///
    /// # Errors
    /// [`ScoringError::EmptyLayers`], [`ScoringError::LayerCountMismatch`],
    /// [`ScoringError::ShapeMismatch`] (with the layer index), and those of
    /// [`finish`](Self::finish).
    pub fn stfpm_map<B: Backend>(
        &self,
        teacher: &[Tensor<B, 4>],
        student: &[Tensor<B, 4>],
    ) -> Result<Tensor<B, 4>, ScoringError> {
        check_layers(teacher.len(), student.len(), None)?;
        let maps = teacher
            .iter()
            .zip(student)
            .enumerate()
            .map(|(k, (t, s))| stfpm_layer_map(t.clone(), s.clone()).map_err(|e| e.at_layer(k)))
            .collect::<Result<Vec<_>, _>>()?;
        self.finish(maps)
    }

    /// Ensemble anomaly map `[B, 1, H, W]` from the teacher's feature pyramid and those of `S`
    /// students (`students[s][k]`, each student's layers in the teacher's order):
    /// [`ensemble_layer_maps`] per layer, reduced by
    /// [`ensemble_mode`](Self::ensemble_mode), then [`finish`](Self::finish).
    ///
    /// # Errors
    /// [`ScoringError::EmptyLayers`], [`ScoringError::NoStudents`],
    /// [`ScoringError::LayerCountMismatch`], [`ScoringError::ShapeMismatch`] (with the layer
    /// index), and those of [`finish`](Self::finish).
    pub fn ensemble_map<B: Backend, S: AsRef<[Tensor<B, 4>]>>(
        &self,
        teacher: &[Tensor<B, 4>],
        students: &[S],
    ) -> Result<Tensor<B, 4>, ScoringError> {
        if students.is_empty() {
            return Err(ScoringError::NoStudents);
        }
        for (i, s) in students.iter().enumerate() {
            check_layers(teacher.len(), s.as_ref().len(), Some(i))?;
        }
        let mut maps = Vec::with_capacity(teacher.len());
        for (k, t) in teacher.iter().enumerate() {
            let layer: Vec<Tensor<B, 4>> = students.iter().map(|s| s.as_ref()[k].clone()).collect();
            let (error, variance) =
                ensemble_layer_maps(t.clone(), &layer).map_err(|e| e.at_layer(k))?;
            maps.push(match self.ensemble_mode {
                EnsembleMode::Error => error,
                EnsembleMode::Variance => variance,
                EnsembleMode::Sum => error + variance,
            });
        }
        self.finish(maps)
    }
}

fn check_layers(expected: usize, found: usize, student: Option<usize>) -> Result<(), ScoringError> {
    if expected == 0 {
        Err(ScoringError::EmptyLayers)
    } else if expected != found {
        Err(ScoringError::LayerCountMismatch {
            student,
            expected,
            found,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tolerance};

    type B = Flex;

    fn pyramid(shift: f64) -> Vec<Tensor<B, 4>> {
        [(8, 8), (16, 4), (32, 2)]
            .into_iter()
            .map(|(c, hw)| {
                Tensor::random(
                    [2, c, hw, hw],
                    Distribution::Normal(shift, 1.0),
                    &Default::default(),
                )
            })
            .collect()
    }

    #[test]
    fn config_defaults() {
        let config = AnomalyMapConfig::new([16, 16]);
        assert_eq!(config.smoothing_sigma, None);
        assert_eq!(config.ensemble_mode, EnsembleMode::Sum);
        let config = config
            .with_smoothing_sigma(Some(4.0))
            .with_ensemble_mode(EnsembleMode::Variance);
        assert_eq!(config.smoothing_sigma, Some(4.0));
        assert_eq!(config.ensemble_mode, EnsembleMode::Variance);
    }

    #[test]
    fn stfpm_map_shape_and_smoothing() {
        let (t, s) = (pyramid(0.0), pyramid(0.5));
        let config = AnomalyMapConfig::new([16, 16]);
        let map = config.stfpm_map(&t, &s).unwrap();
        assert_eq!(map.dims(), [2, 1, 16, 16]);
        let smoothed = config
            .with_smoothing_sigma(Some(1.0))
            .stfpm_map(&t, &s)
            .unwrap();
        let expected = gaussian_smooth(map, 1.0).unwrap();
        smoothed
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-7));
    }

    #[test]
    fn ensemble_modes() {
        let t = pyramid(0.0);
        let students: Vec<_> = (0..3).map(|i| pyramid(f64::from(i) * 0.2)).collect();
        let config = AnomalyMapConfig::new([8, 8]);
        let sum = config.ensemble_map(&t, &students).unwrap();
        assert_eq!(sum.dims(), [2, 1, 8, 8]);
        let error = config
            .clone()
            .with_ensemble_mode(EnsembleMode::Error)
            .ensemble_map(&t, &students)
            .unwrap();
        let variance = config
            .with_ensemble_mode(EnsembleMode::Variance)
            .ensemble_map(&t, &students)
            .unwrap();
        // Layer maps are non-negative, so each product is at most the product of the sums.
        let slack = (sum - error.clone().max_pair(variance.clone()))
            .min()
            .into_scalar();
        assert!(slack >= -1e-6, "{slack}");
        assert!(error.min().into_scalar() >= 0.0 && variance.min().into_scalar() >= 0.0);
    }

    #[test]
    fn layer_errors() {
        let config = AnomalyMapConfig::new([8, 8]);
        let (t, s) = (pyramid(0.0), pyramid(0.0));
        assert_eq!(
            config.stfpm_map::<B>(&[], &[]).unwrap_err(),
            ScoringError::EmptyLayers
        );
        assert_eq!(
            config.stfpm_map(&t, &s[..2]).unwrap_err(),
            ScoringError::LayerCountMismatch {
                student: None,
                expected: 3,
                found: 2
            }
        );
        let mut wrong = s.clone();
        wrong.swap(1, 2);
        assert!(matches!(
            config.stfpm_map(&t, &wrong).unwrap_err(),
            ScoringError::ShapeMismatch {
                layer: Some(1),
                student: None,
                ..
            }
        ));
        let none: [Vec<Tensor<B, 4>>; 0] = [];
        assert_eq!(
            config.ensemble_map(&t, &none).unwrap_err(),
            ScoringError::NoStudents
        );
        assert!(matches!(
            config.ensemble_map(&t, &[s.clone(), wrong]).unwrap_err(),
            ScoringError::ShapeMismatch {
                layer: Some(1),
                student: Some(1),
                ..
            }
        ));
        assert_eq!(
            config
                .ensemble_map(&t, &[s.clone(), s[..1].to_vec()])
                .unwrap_err(),
            ScoringError::LayerCountMismatch {
                student: Some(1),
                expected: 3,
                found: 1
            }
        );
        assert_eq!(
            config
                .with_smoothing_sigma(Some(-1.0))
                .stfpm_map(&t, &s)
                .unwrap_err(),
            ScoringError::InvalidSigma(-1.0)
        );
    }
}
