//! The two request bodies: a Slack-compatible `{"text": …}` message and Alertmanager's
//! `POST /api/v2/alerts` array. Pure functions of the alerts.

use serde_json::{Map, Value, json};

use super::state::{Alert, Notice};
use crate::event::Timestamp;

/// The Slack (Mattermost, Rocket.Chat, …) message for a notice: one when an alert starts
/// firing, one when it resolves; `None` for an update, which a chat would only repeat.
pub(crate) fn slack(notice: &Notice) -> Option<String> {
    let text = match notice {
        Notice::Firing(alert) if alert.description.is_empty() => {
            format!("[FIRING] {}", alert.summary)
        }
        Notice::Firing(alert) => format!("[FIRING] {}\n{}", alert.summary, alert.description),
        Notice::Resolved(alert) => format!("[RESOLVED] {}", alert.summary),
        Notice::Updated(_) => return None,
    };
    Some(json!({ "text": text }).to_string())
}

/// The Alertmanager body posting `alerts` for the config `config`.
pub(crate) fn alertmanager(alerts: &[Alert], config: &str, generator_url: Option<&str>) -> String {
    Value::Array(
        alerts
            .iter()
            .map(|alert| alertmanager_alert(alert, config, generator_url))
            .collect(),
    )
    .to_string()
}

fn alertmanager_alert(alert: &Alert, config: &str, generator_url: Option<&str>) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), alert.kind.alertname().into());
    labels.insert("config".into(), config.into());
    labels.insert("severity".into(), alert.severity.into());
    labels.insert("kind".into(), alert.kind.as_str().into());
    if let Some(component) = &alert.component {
        // Part of the identity: each component's alert fires and resolves on its own.
        labels.insert("component".into(), component.as_str().into());
    }
    let mut object = Map::new();
    object.insert("labels".into(), Value::Object(labels));
    object.insert(
        "annotations".into(),
        json!({ "summary": alert.summary, "description": alert.description }),
    );
    object.insert(
        "startsAt".into(),
        Timestamp(alert.starts_at).to_string().into(),
    );
    if let Some(ends_at) = alert.ends_at {
        object.insert("endsAt".into(), Timestamp(ends_at).to_string().into());
    }
    if let Some(url) = generator_url {
        object.insert("generatorURL".into(), url.into());
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::alert::state::AlertKind;

    fn alert(kind: AlertKind, component: Option<&str>, ends: Option<u64>) -> Alert {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        Alert {
            kind,
            component: component.map(Into::into),
            severity: "warning",
            summary: "config app reload rejected at stage validate".into(),
            description: "a.toml:2:7: limits.rpm: must be > 0\nand 1 more".into(),
            starts_at: at(1_700_000_000),
            ends_at: ends.map(at),
        }
    }

    #[test]
    fn slack_says_firing_with_the_description_and_resolved_without() {
        let firing = Notice::Firing(alert(AlertKind::Reload, None, None));
        let body: Value = serde_json::from_str(&slack(&firing).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"text": "[FIRING] config app reload rejected at stage validate\na.toml:2:7: limits.rpm: must be > 0\nand 1 more"})
        );
        let resolved = Notice::Resolved(alert(AlertKind::Reload, None, Some(1_700_000_060)));
        let body: Value = serde_json::from_str(&slack(&resolved).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"text": "[RESOLVED] config app reload rejected at stage validate"})
        );
        assert_eq!(
            slack(&Notice::Updated(alert(AlertKind::Reload, None, None))),
            None
        );
        let mut bare = alert(AlertKind::Watcher, None, None);
        bare.description.clear();
        let body: Value = serde_json::from_str(&slack(&Notice::Firing(bare)).unwrap()).unwrap();
        assert_eq!(
            body["text"],
            "[FIRING] config app reload rejected at stage validate"
        );
    }

    #[test]
    fn alertmanager_gets_an_array_with_labels_annotations_and_times() {
        let body = alertmanager(
            &[alert(AlertKind::Reload, None, None)],
            "app",
            Some("http://svc:8080/admin"),
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!([{
                "labels": {"alertname": "HotconfReloadRejected", "config": "app", "severity": "warning", "kind": "reload"},
                "annotations": {
                    "summary": "config app reload rejected at stage validate",
                    "description": "a.toml:2:7: limits.rpm: must be > 0\nand 1 more"
                },
                "startsAt": "2023-11-14T22:13:20.000Z",
                "generatorURL": "http://svc:8080/admin"
            }])
        );
    }

    #[test]
    fn a_resolved_alertmanager_alert_has_ends_at_and_a_component_label() {
        let body = alertmanager(
            &[
                alert(AlertKind::Component, Some("pool"), Some(1_700_000_060)),
                alert(AlertKind::Watcher, None, None),
            ],
            "svc",
            None,
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        let first = &body[0];
        assert_eq!(
            first["labels"],
            json!({"alertname": "HotconfComponentFailed", "config": "svc", "severity": "warning", "kind": "component", "component": "pool"})
        );
        assert_eq!(first["endsAt"], "2023-11-14T22:14:20.000Z");
        assert!(first.get("generatorURL").is_none());
        assert_eq!(body[1]["labels"]["alertname"], "HotconfWatcherDegraded");
        assert!(body[1].get("endsAt").is_none());
    }
}
