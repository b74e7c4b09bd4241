//! OpenTelemetry traces out of the process: the OTLP/gRPC exporter behind a bounded queue
//! whose drops are counted, the sampler, the resource, and W3C propagation. Off unless an
//! endpoint is set; a collector that is down or slow costs dropped spans, never a call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use serde::Deserialize;

use crate::metrics::{TRACE_SPANS_DROPPED, TRACE_SPANS_EXPORTED};

/// Spans waiting to be exported at most; past this a new span is dropped (and counted).
const QUEUE_BOUND: usize = 4096;
/// An export that takes longer fails (its spans are counted as dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[tracing]` in the config file; flags and env fill in over it (see `Config`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; None: traces off.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded (a sampled caller's are always kept, an unsampled
    /// caller's never); None: every trace.
    pub sampling_ratio: Option<f64>,
    /// `service.name` (`OTEL_SERVICE_NAME` beats the file's); None: "sessiond".
    pub service_name: Option<String>,
    /// More resource attributes (beside `OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: BTreeMap<String, String>,
}

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry exporter: {0}")]
pub struct TelemetryError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The tracer provider for `settings`, or None when traces are off. Sets the W3C
/// propagator. Must run inside the Tokio runtime (the exporter's channel lives there).
pub fn tracer_provider(
    settings: &TraceSettings,
) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    let Some(endpoint) = &settings.otlp_endpoint else {
        return Ok(None);
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let queue = Arc::new(AtomicUsize::new(0));
    let batches = BatchSpanProcessor::builder(CountingExporter {
        inner: exporter,
        queue: queue.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE_BOUND)
            .build(),
    )
    .build();
    // The builder also reads OTEL_RESOURCE_ATTRIBUTES.
    let resource = Resource::builder()
        .with_service_name(
            settings
                .service_name
                .clone()
                .unwrap_or_else(|| "sessiond".to_owned()),
        )
        .with_attributes(
            settings
                .resource_attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        )
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // Sampling is decided before a span is made (layers/trace_context.rs, at
    // `sampling_ratio`): what reaches the SDK is kept.
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BoundedQueue {
            inner: batches,
            queue,
        })
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_resource(resource);
    Ok(Some(provider.build()))
}

/// Drops a span (counted) once [`QUEUE_BOUND`] wait for export, before the batch
/// processor's own queue could fill: its drops are not counted anywhere we can read.
#[derive(Debug)]
struct BoundedQueue {
    inner: BatchSpanProcessor,
    queue: Arc<AtomicUsize>,
}

impl SpanProcessor for BoundedQueue {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queue.fetch_add(1, Ordering::Relaxed) >= QUEUE_BOUND {
            self.queue.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!(TRACE_SPANS_DROPPED, "reason" => "queue_full").increment(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what it sent and what it failed to send.
#[derive(Debug)]
struct CountingExporter {
    inner: opentelemetry_otlp::SpanExporter,
    queue: Arc<AtomicUsize>,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        self.queue.fetch_sub(spans, Ordering::Relaxed);
        match &result {
            Ok(()) => metrics::counter!(TRACE_SPANS_EXPORTED).increment(spans as u64),
            Err(_) => metrics::counter!(TRACE_SPANS_DROPPED, "reason" => "export_failed")
                .increment(spans as u64),
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The ratio OpenTelemetry's `OTEL_TRACES_SAMPLER` (and `_ARG`) name, if they name one
/// (every sampler is taken as parent-based: a caller's decision always wins).
pub fn ratio_from_otel_env() -> Option<f64> {
    let sampler = std::env::var("OTEL_TRACES_SAMPLER").ok()?;
    let argument = || {
        std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
    };
    match sampler.trim() {
        "always_on" | "parentbased_always_on" => Some(1.0),
        "always_off" | "parentbased_always_off" => Some(0.0),
        "traceidratio" | "parentbased_traceidratio" => Some(argument().unwrap_or(1.0)),
        _ => None,
    }
}
