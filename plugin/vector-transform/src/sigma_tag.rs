//! The `sigma_tag` transform: tags each log event with the Sigma rules it matches.
//!
//! All logic is in `sigmatag-vector` (rules, mapping, the record seam for `vrl` values, the
//! in-place tag); this file is only Vector's component glue, so it also drops into a Vector
//! fork as `src/transforms/sigma_tag.rs`. It follows Vector's unstable Rust API: checked
//! against v0.58 (see docs/vector.md).

use std::sync::Arc;

use sigmatag_vector::{TagConfig, VrlTagger};
use vector::config::{
    DataType, GenerateConfig, Input, OutputId, TransformConfig, TransformContext, TransformOutput,
};
use vector::event::Event;
use vector::schema;
use vector::transforms::{FunctionTransform, OutputBuffer, Transform};
use vector_lib::config::LogNamespace;
use vector_lib::configurable::configurable_component;

/// Configuration for the `sigma_tag` transform.
#[configurable_component(transform(
    "sigma_tag",
    "Tag log events with the Sigma rules they match."
))]
#[derive(Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SigmaTagConfig {
    /// Rule files or directories, searched recursively for `.yml`/`.yaml`. Empty: the
    /// embedded default rule.
    #[serde(default)]
    rules: Vec<String>,

    /// Field mapping: `flat` (default), `evtx`, `ecs-windows`, or a pipeline YAML file.
    #[serde(default)]
    mapping: Option<String>,

    /// Top-level field that receives the matched rules (`id`, `title`, `level`, `tags`).
    #[serde(default = "default_tag_field")]
    tag_field: String,

    /// Drop events no rule matched. Events that cannot be read always pass unchanged.
    #[serde(default)]
    drop_unmatched: bool,
}

fn default_tag_field() -> String {
    "sigma".into()
}

impl GenerateConfig for SigmaTagConfig {
    fn generate_config() -> toml::Value {
        toml::Value::try_from(Self {
            rules: vec!["/etc/vector/sigma".into()],
            mapping: Some("evtx".into()),
            tag_field: default_tag_field(),
            drop_unmatched: false,
        })
        .unwrap_or(toml::Value::Table(Default::default())) // ok: plain struct, cannot fail
    }
}

#[async_trait::async_trait]
#[typetag::serde(name = "sigma_tag")]
impl TransformConfig for SigmaTagConfig {
    async fn build(&self, _: &TransformContext) -> vector::Result<Transform> {
        let config = TagConfig {
            rules: self.rules.iter().map(Into::into).collect(),
            mapping: self.mapping.clone(),
            tag_field: self.tag_field.clone(),
            drop_unmatched: self.drop_unmatched,
            ..TagConfig::default()
        };
        let tagger = config.build().map_err(|e| format!("sigma_tag: {e}"))?;
        for e in &tagger.rejected {
            eprintln!("sigma_tag: rejected: {e}");
        }
        Ok(Transform::function(SigmaTag::new(Arc::new(
            VrlTagger::new(tagger),
        ))))
    }

    fn input(&self) -> Input {
        Input::log()
    }

    fn outputs(
        &self,
        input_definitions: &[(OutputId, schema::Definition)],
        _: LogNamespace,
    ) -> Vec<TransformOutput> {
        vec![TransformOutput::new(
            DataType::Log,
            input_definitions
                .iter()
                .map(|(_, definition)| definition.clone())
                .collect(),
        )]
    }

    fn enable_concurrency(&self) -> bool {
        true
    }
}

/// One per concurrent task: shares the compiled rules, owns its scratch.
struct SigmaTag {
    tagger: Arc<VrlTagger>,
    scratch: sigmatag_vector::Scratch,
}

impl SigmaTag {
    fn new(tagger: Arc<VrlTagger>) -> Self {
        let scratch = tagger.scratch();
        SigmaTag { tagger, scratch }
    }
}

impl Clone for SigmaTag {
    fn clone(&self) -> Self {
        SigmaTag::new(Arc::clone(&self.tagger))
    }
}

impl FunctionTransform for SigmaTag {
    fn transform(&mut self, output: &mut OutputBuffer, mut event: Event) {
        if let Event::Log(log) = &mut event {
            let outcome = self.tagger.tag(&mut self.scratch, log.value_mut());
            if !self.tagger.keep(outcome) {
                return;
            }
        }
        output.push(event);
    }
}
