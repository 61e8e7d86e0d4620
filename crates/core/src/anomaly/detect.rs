//! The detectors' state across services, fed line by line and tick by tick.
//! Synchronous and cheap: the log pipeline calls [`Detectors::line`] for every
//! line it ingests.

use std::collections::{HashMap, VecDeque};

use superserver_ops::anomaly::flap::{FlapRule, Flapping};
use superserver_ops::anomaly::rate::{RateRule, RateSpike, Spike};
use superserver_ops::anomaly::templates::{NewTemplateRule, NewTemplates};
use superserver_wire::{AnomalyEvidence, AnomalyKind, MetricPoint};

use super::config::AnomalyConfig;

/// Sample lines kept per template and per service's errors.
const SAMPLES: usize = 5;
/// A sample line is cut to this many bytes.
const SAMPLE_BYTES: usize = 1024;

/// A line as the log pipeline saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineSeen<'a> {
    pub service: &'a str,
    pub at_ms: i64,
    pub error: bool,
    pub template_id: i64,
    pub template: &'a str,
    pub new_template: bool,
    pub line: &'a str,
}

/// What a detector found, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub service: String,
    pub kind: AnomalyKind,
    /// Distinguishes findings of one kind on one service (template id, series).
    pub key: String,
    pub summary: String,
    pub evidence: AnomalyEvidence,
}

struct TemplateTrack {
    service: String,
    template: String,
    spike: RateSpike,
    samples: VecDeque<String>,
    last_ms: i64,
}

struct ErrorTrack {
    spike: RateSpike,
    samples: VecDeque<String>,
}

pub(crate) struct Detectors {
    cfg: AnomalyConfig,
    errors: HashMap<String, ErrorTrack>,
    templates: HashMap<i64, TemplateTrack>,
    new_templates: NewTemplates,
    flaps: HashMap<String, Flapping>,
}

fn sample(line: &str) -> String {
    let mut end = line.len().min(SAMPLE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

fn keep(samples: &mut VecDeque<String>, line: &str) {
    if samples.len() == SAMPLES {
        samples.pop_front();
    }
    samples.push_back(sample(line));
}

fn window(spike: &Spike) -> Vec<MetricPoint> {
    spike.window.iter().map(|(t, v)| MetricPoint { t_ms: *t, avg: *v, min: *v, max: *v }).collect()
}

fn figures(spike: &Spike) -> std::collections::BTreeMap<String, f64> {
    [("count", spike.count as f64), ("baseline_median", spike.baseline_median), ("z", spike.z)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

impl Detectors {
    pub fn new(cfg: AnomalyConfig) -> Self {
        let warm = NewTemplateRule { warm_up_ms: (cfg.new_template_warm_up_seconds as i64) * 1000, max_per_window: 3 };
        Self {
            cfg,
            errors: HashMap::new(),
            templates: HashMap::new(),
            new_templates: NewTemplates::new(warm),
            flaps: HashMap::new(),
        }
    }

    fn rule(&self, floor: u64) -> RateRule {
        RateRule {
            bucket_ms: (self.cfg.bucket_seconds as i64) * 1000,
            baseline_buckets: self.cfg.baseline_buckets,
            min_baseline_buckets: self.cfg.min_baseline_buckets,
            z: self.cfg.z,
            floor,
        }
    }

    /// One ingested line.
    pub fn line(&mut self, l: LineSeen<'_>, out: &mut Vec<Found>) {
        if self.new_templates.line(l.service, l.at_ms, l.new_template, l.error) {
            out.push(Found {
                service: l.service.to_string(),
                kind: AnomalyKind::NewErrorTemplate,
                key: l.template_id.to_string(),
                summary: format!("{}: a new kind of error: {}", l.service, sample(l.template)),
                evidence: AnomalyEvidence {
                    template: Some(l.template.to_string()),
                    template_id: Some(l.template_id),
                    samples: vec![sample(l.line)],
                    ..AnomalyEvidence::default()
                },
            });
        }
        // Every line of the service moves its error counter on, so the
        // minutes without errors make the baseline an error burst is judged
        // against.
        let rule = self.rule(self.cfg.error_floor);
        let t = match self.errors.get_mut(l.service) {
            Some(t) => t,
            None => self
                .errors
                .entry(l.service.to_string())
                .or_insert_with(|| ErrorTrack { spike: RateSpike::new(rule), samples: VecDeque::new() }),
        };
        if let Some(s) = t.spike.add(l.at_ms, u64::from(l.error)) {
            out.push(error_spike(l.service, &s, &t.samples));
        }
        if l.error {
            keep(&mut t.samples, l.line);
        }
        if !self.templates.contains_key(&l.template_id) && self.templates.len() >= self.cfg.max_tracked_templates {
            self.evict();
        }
        let rule = self.rule(self.cfg.template_floor);
        let t = self.templates.entry(l.template_id).or_insert_with(|| TemplateTrack {
            service: l.service.to_string(),
            template: l.template.to_string(),
            spike: RateSpike::new(rule),
            samples: VecDeque::new(),
            last_ms: l.at_ms,
        });
        t.last_ms = l.at_ms;
        if let Some(s) = t.spike.add(l.at_ms, 1) {
            out.push(template_spike(l.template_id, t, &s));
        }
        keep(&mut t.samples, l.line);
    }

    /// Drops the least recently seen tenth of the tracked templates.
    fn evict(&mut self) {
        let mut by_age: Vec<(i64, i64)> = self.templates.iter().map(|(id, t)| (t.last_ms, *id)).collect();
        by_age.sort_unstable();
        for (_, id) in by_age.iter().take((by_age.len() / 10).max(1)) {
            self.templates.remove(id);
        }
    }

    /// Closes the buckets that ended by `now_ms`, so a burst is judged even
    /// when nothing follows it.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<Found>) {
        for (service, t) in &mut self.errors {
            if let Some(s) = t.spike.advance(now_ms) {
                out.push(error_spike(service, &s, &t.samples));
            }
        }
        for (id, t) in &mut self.templates {
            if let Some(s) = t.spike.advance(now_ms) {
                out.push(template_spike(*id, t, &s));
            }
        }
    }

    /// A health change of `service`; a finding when it flaps.
    pub fn health_change(&mut self, service: &str, at_ms: i64, history: &[String], out: &mut Vec<Found>) {
        let rule = FlapRule { changes: self.cfg.flap_changes, window_ms: (self.cfg.flap_window_seconds as i64) * 1000 };
        let f = self.flaps.entry(service.to_string()).or_insert_with(|| Flapping::new(rule));
        if let Some(n) = f.change(at_ms) {
            out.push(Found {
                service: service.to_string(),
                kind: AnomalyKind::HealthFlapping,
                key: String::new(),
                summary: format!("{service}: health changed {n} times within {} s", self.cfg.flap_window_seconds),
                evidence: AnomalyEvidence {
                    samples: history.to_vec(),
                    figures: [("changes".to_string(), n as f64)].into_iter().collect(),
                    ..AnomalyEvidence::default()
                },
            });
        }
    }
}

fn error_spike(service: &str, s: &Spike, samples: &VecDeque<String>) -> Found {
    Found {
        service: service.to_string(),
        kind: AnomalyKind::ErrorRateSpike,
        key: String::new(),
        summary: format!("{service}: {} error lines in a bucket against a usual {:.1}", s.count, s.baseline_median),
        evidence: AnomalyEvidence {
            samples: samples.iter().cloned().collect(),
            window: window(s),
            figures: figures(s),
            ..AnomalyEvidence::default()
        },
    }
}

fn template_spike(id: i64, t: &TemplateTrack, s: &Spike) -> Found {
    Found {
        service: t.service.clone(),
        kind: AnomalyKind::TemplateRateSpike,
        key: id.to_string(),
        summary: format!(
            "{}: {} lines of one template in a bucket against a usual {:.1}: {}",
            t.service,
            s.count,
            s.baseline_median,
            sample(&t.template)
        ),
        evidence: AnomalyEvidence {
            template: Some(t.template.clone()),
            template_id: Some(id),
            samples: t.samples.iter().cloned().collect(),
            window: window(s),
            figures: figures(s),
            ..AnomalyEvidence::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AnomalyConfig {
        AnomalyConfig {
            bucket_seconds: 1,
            min_baseline_buckets: 3,
            new_template_warm_up_seconds: 0,
            ..AnomalyConfig::default()
        }
    }

    fn line<'a>(at_ms: i64, error: bool, id: i64, new_template: bool) -> LineSeen<'a> {
        LineSeen {
            service: "container:web",
            at_ms,
            error,
            template_id: id,
            template: "db error <*>",
            new_template,
            line: "db error 42",
        }
    }

    #[test]
    fn an_error_burst_is_an_error_rate_spike_with_samples_and_window() {
        let mut d = Detectors::new(cfg());
        let mut out = Vec::new();
        for sec in 0..10 {
            d.line(line(sec * 1000, sec % 3 == 0, 1, false), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        for i in 0..100 {
            d.line(line(10_000 + i, true, 2, i == 0), &mut out);
        }
        d.tick(11_000, &mut out);
        let kinds: Vec<AnomalyKind> = out.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&AnomalyKind::NewErrorTemplate), "{kinds:?}");
        let spike = out.iter().find(|f| f.kind == AnomalyKind::ErrorRateSpike).expect("an error-rate spike");
        assert_eq!(spike.evidence.figures["count"], 100.0);
        assert_eq!(spike.evidence.samples.len(), SAMPLES);
        assert_eq!(spike.evidence.window.last().map(|p| p.avg), Some(100.0));
        let tmpl = out.iter().find(|f| f.kind == AnomalyKind::TemplateRateSpike);
        assert!(tmpl.is_none(), "template 2 had no baseline yet: {tmpl:?}");
    }

    #[test]
    fn errors_after_quiet_info_lines_are_a_spike() {
        let mut d = Detectors::new(cfg());
        let mut out = Vec::new();
        for sec in 0..10 {
            d.line(line(sec * 1000, false, 1, false), &mut out);
        }
        for i in 0..50 {
            d.line(line(10_000 + i, true, 2, false), &mut out);
        }
        d.tick(11_000, &mut out);
        let spike = out.iter().find(|f| f.kind == AnomalyKind::ErrorRateSpike).expect("a spike over a zero baseline");
        assert_eq!(spike.evidence.figures["baseline_median"], 0.0);
    }

    #[test]
    fn tracked_templates_are_bounded() {
        let mut d = Detectors::new(AnomalyConfig { max_tracked_templates: 100, ..cfg() });
        let mut out = Vec::new();
        for id in 0..1000 {
            d.line(line(id, false, id, true), &mut out);
        }
        assert!(d.templates.len() <= 100);
    }

    #[test]
    fn samples_are_cut_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let s = sample(&long);
        assert!(s.len() <= SAMPLE_BYTES && s.chars().all(|c| c == 'é'));
    }
}
