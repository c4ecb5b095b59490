//! A trained model found again from the command line: a run folder (its `model.safetensors`,
//! described by its `config.toml`) or a bare weights file with `--experiment FILE`. The one
//! way `runner eval` and `runner predict` open what they use.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::experiment::Experiment;
use crate::model::Model;
use crate::report::{CONFIG_FILE, MODEL_FILE};
use crate::train::select_device;

/// Where the weights and their experiment are.
pub(crate) struct Located {
    /// The `.safetensors` file.
    pub(crate) weights: PathBuf,
    /// The experiment file that describes them.
    pub(crate) experiment: PathBuf,
    /// The run folder, when the target is one.
    pub(crate) run_dir: Option<PathBuf>,
}

/// Resolves `RUN_DIR | WEIGHTS` and `--experiment`; every missing piece is one error naming it.
pub(crate) fn locate(path: &Path, experiment: Option<&Path>) -> anyhow::Result<Located> {
    if path.is_dir() {
        let weights = path.join(MODEL_FILE);
        if !weights.is_file() {
            anyhow::bail!(
                "{} has no {MODEL_FILE}: the run has not finished (its status.json says how far it got)",
                path.display()
            );
        }
        let experiment = match experiment {
            Some(file) => file.to_path_buf(),
            None => {
                let config = path.join(CONFIG_FILE);
                if !config.is_file() {
                    anyhow::bail!(
                        "{} is not a run folder: it has no {CONFIG_FILE} (name the experiment with `--experiment FILE`)",
                        path.display()
                    );
                }
                config
            }
        };
        return Ok(Located {
            weights,
            experiment,
            run_dir: Some(path.to_path_buf()),
        });
    }
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: give a run folder or a .safetensors weights file",
            path.display()
        );
    }
    let Some(experiment) = experiment else {
        anyhow::bail!(
            "{} is a weights file: name the experiment it was trained with, `--experiment FILE` \
             (a run folder's {CONFIG_FILE} works)",
            path.display()
        );
    };
    Ok(Located {
        weights: path.to_path_buf(),
        experiment: experiment.to_path_buf(),
        run_dir: None,
    })
}

/// A checked experiment and its model with the saved weights loaded, on the experiment's device.
pub(crate) struct Trained {
    /// The experiment the weights belong to.
    pub(crate) exp: Experiment,
    /// The network, its weights loaded.
    pub(crate) model: Model,
    /// Where it runs.
    pub(crate) device: Device,
}

/// Checks the experiment of `at`, builds its model and loads the weights into it. `Ok(None)`:
/// the experiment has errors, already printed (the verb exits 2).
pub(crate) fn open(at: &Located) -> anyhow::Result<Option<Trained>> {
    let Some((exp, graph)) =
        super::run::checked_experiment(&at.experiment, &[], None, crate::check::Weights::Skip)
    else {
        return Ok(None);
    };
    let device = select_device(exp.device()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = Model::new(&graph, exp.seed(), &device)?;
    model
        .load(&at.weights)
        .map_err(|e| anyhow::anyhow!("the weights do not fit `{}`: {e}", exp.name()))?;
    Ok(Some(Trained { exp, model, device }))
}
