//! The deployment files are checked by the tools that will read them: the Compose file by
//! docker-compose, the Prometheus configuration and alerting rules by promtool, including the
//! rules' unit tests, the Kubernetes manifests' settings by `d2c check`, the dashboard's queries
//! by promtool. A missing tool fails the test: a check that is skipped cannot catch anything.
//! YAML is read with PyYAML (`python3`, Debian package python3-yaml) into JSON values.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tool args…` in the repository root. `package` is the Debian package that provides
/// `tool`, named when it is missing.
fn start(tool: &str, args: &[&str], package: &str) -> Output {
    match Command::new(tool).args(args).current_dir(root()).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{tool}` is not installed: install it with scripts/test.sh (Debian package {package})"
        ),
        Err(e) => panic!("could not run `{tool}`: {e}"),
    }
}

fn check_success(tool: &str, args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Runs `tool args…` in the repository root and panics, with the tool's output, unless it
/// succeeds; returns its standard output. `package` is the Debian package that provides `tool`.
fn run(tool: &str, args: &[&str], package: &str) -> Vec<u8> {
    let output = start(tool, args, package);
    check_success(tool, args, &output);
    output.stdout
}

#[test]
fn compose_file_is_valid() {
    run(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        "docker-compose",
    );
}

#[test]
fn prometheus_rules_pass_promtool_check() {
    run(
        "promtool",
        &["check", "rules", "deploy/prometheus/rules/d2c.yml"],
        "prometheus",
    );
}

#[test]
fn prometheus_rules_unit_tests_pass() {
    run(
        "promtool",
        &["test", "rules", "deploy/prometheus/tests/d2c_test.yml"],
        "prometheus",
    );
}

#[test]
fn business_rules_pass_promtool_check_and_their_unit_tests() {
    run(
        "promtool",
        &["check", "rules", "deploy/prometheus/rules/business.yml"],
        "prometheus",
    );
    run(
        "promtool",
        &["test", "rules", "deploy/prometheus/tests/business_test.yml"],
        "prometheus",
    );
}

#[test]
fn prometheus_config_passes_promtool() {
    // Also checks every rule file the configuration loads.
    run(
        "promtool",
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        "prometheus",
    );
}

// ---- Kubernetes manifests and the Grafana dashboard ----

/// The YAML documents of `path` (relative to the repository root) as JSON values, empty
/// documents left out, read by PyYAML's safe loader.
fn yaml_documents(path: &str) -> Vec<Value> {
    const LOAD: &str =
        "import yaml,json,sys; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let args = ["-c", LOAD, path];
    let output = start("python3", &args, "python3-yaml");
    if String::from_utf8_lossy(&output.stderr).contains("No module named 'yaml'") {
        panic!(
            "PyYAML is not installed for `python3`: install it with scripts/test.sh (Debian package python3-yaml)"
        );
    }
    check_success("python3", &args, &output);
    let docs: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{path}: PyYAML's output is not JSON: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

const KUBERNETES: &str = "deploy/kubernetes";

/// Every document of every YAML file under deploy/kubernetes, with the file it came from.
fn kubernetes_documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(KUBERNETES))
        .expect("deploy/kubernetes exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {KUBERNETES}");
    let mut docs = Vec::new();
    for f in files {
        let name = format!("{KUBERNETES}/{}", f.file_name().unwrap().to_str().unwrap());
        let found = yaml_documents(&name);
        assert!(!found.is_empty(), "{name} holds no YAML document");
        docs.extend(found.into_iter().map(|d| (name.clone(), d)));
    }
    docs
}

/// The one object of `kind` in the manifests (Kustomization aside).
fn object<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} in {KUBERNETES}");
    found[0]
}

fn string_map(v: &Value, what: &str) -> BTreeMap<String, String> {
    let map = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not a map: {v}"));
    map.iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{what}.{k} is not a string: {v}"));
            (k.clone(), v.to_string())
        })
        .collect()
}

/// Asserts that `selector` is not empty and that every label in it is among `labels`.
fn assert_selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    what: &str,
) {
    assert!(!selector.is_empty(), "{what}: empty selector");
    for (k, v) in selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "{what}: selector {k}={v} does not match the labels {labels:?}"
        );
    }
}

/// The files of the ConfigMap (file name → text).
fn configmap_files(docs: &[(String, Value)]) -> BTreeMap<String, String> {
    string_map(&object(docs, "ConfigMap")["data"], "ConfigMap data")
}

fn configmap_settings(docs: &[(String, Value)]) -> toml::Table {
    let files = configmap_files(docs);
    let text = files.get("d2c.toml").expect("the ConfigMap holds d2c.toml");
    toml::from_str(text).unwrap_or_else(|e| panic!("the ConfigMap's d2c.toml: {e}"))
}

#[test]
fn kubernetes_manifests_parse_and_name_their_objects() {
    let docs = kubernetes_documents();
    for (file, d) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(
                d[key].as_str().is_some_and(|s| !s.is_empty()),
                "{file}: a document without {key}: {d}"
            );
        }
        assert!(
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{file}: a {} without metadata.name",
            d["kind"]
        );
    }
    // kustomization.yaml lists exactly the other files.
    let kustomization = object(&docs, "Kustomization");
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("kustomization.yaml lists resources")
        .iter()
        .map(|r| format!("{KUBERNETES}/{}", r.as_str().expect("a file name")))
        .collect();
    let files: BTreeSet<String> = docs
        .iter()
        .filter(|(_, d)| d["kind"] != "Kustomization")
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(listed, files, "kustomization.yaml must list every manifest");
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
    ] {
        object(&docs, kind);
    }
}

#[test]
fn kubernetes_deployment_probes_resources_and_selectors_fit_together() {
    let docs = kubernetes_documents();
    let deployment = object(&docs, "Deployment");
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let pod = &deployment["spec"]["template"];
    let pod_labels = string_map(&pod["metadata"]["labels"], "pod labels");
    assert_selects(
        &string_map(
            &deployment["spec"]["selector"]["matchLabels"],
            "Deployment selector",
        ),
        &pod_labels,
        "Deployment",
    );

    // The Service selects the pods and names the port the probes use.
    let service = object(&docs, "Service");
    assert_selects(
        &string_map(&service["spec"]["selector"], "Service selector"),
        &pod_labels,
        "Service",
    );
    let ports = service["spec"]["ports"].as_array().expect("Service ports");
    assert_eq!(ports.len(), 1, "the Service has one port: {ports:?}");
    let port_name = ports[0]["name"]
        .as_str()
        .expect("the Service port is named");
    assert_eq!(port_name, "http");
    assert_eq!(ports[0]["port"], 9464);
    let target = &ports[0]["targetPort"];

    let containers = pod["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let container_ports = c["ports"].as_array().expect("container ports");
    let http = container_ports
        .iter()
        .find(|p| p["name"] == port_name)
        .unwrap_or_else(|| panic!("no container port named {port_name}"));
    assert!(
        *target == http["name"] || *target == http["containerPort"],
        "the Service's targetPort {target} is not the container port {http}"
    );
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}: {}", c[probe]);
        assert!(
            get["port"] == port_name || get["port"] == http["containerPort"],
            "{probe} is not on the Service's port {port_name}: {}",
            c[probe]
        );
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "no resources.{kind}.{resource}: {}",
                c["resources"]
            );
        }
    }

    // The settings: mounted from the ConfigMap where the arguments read them.
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["run", "--config", "/etc/d2c/d2c.toml"]);
    let configmap = object(&docs, "ConfigMap")["metadata"]["name"].clone();
    let volume = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["configMap"]["name"] == configmap)
        .expect("a volume of the ConfigMap");
    assert!(
        c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .any(|m| m["name"] == volume["name"] && m["mountPath"] == "/etc/d2c"),
        "the ConfigMap is not mounted at /etc/d2c"
    );

    // Static membership from the pod name, brokers and JSON logs from the environment.
    let env = c["env"].as_array().expect("env");
    let var = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("no environment variable {n}"))
    };
    assert_eq!(
        var("D2C_KAFKA__GROUP_INSTANCE_ID")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert!(var("D2C_KAFKA__BROKERS")["value"].is_string());
    assert_eq!(var("D2C_LOG_FORMAT")["value"], "json");

    // The grace period outlasts the shutdown deadline of the settings.
    let settings = configmap_settings(&docs);
    let deadline = settings["kafka"]
        .get("shutdown_deadline")
        .map_or(Duration::from_secs(30), |d| {
            humantime::parse_duration(d.as_str().expect("a duration")).expect("a duration")
        });
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace) > deadline && grace > 30,
        "terminationGracePeriodSeconds {grace} must exceed kafka.shutdown_deadline {deadline:?}"
    );
    // d2c listens beyond loopback, on the container port.
    let listen = settings["http"]["listen"].as_str().expect("http.listen");
    assert_eq!(listen, format!("0.0.0.0:{}", http["containerPort"]));

    // Non-root, read-only, no capabilities.
    let security = &c["securityContext"];
    assert!(
        security["runAsNonRoot"] == true || pod["spec"]["securityContext"]["runAsNonRoot"] == true
    );
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));

    // The PodDisruptionBudget and the autoscaler act on these pods.
    let pdb = object(&docs, "PodDisruptionBudget");
    assert_selects(
        &string_map(&pdb["spec"]["selector"]["matchLabels"], "PDB selector"),
        &pod_labels,
        "PodDisruptionBudget",
    );
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let hpa = object(&docs, "HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name);
    let min = hpa["spec"]["minReplicas"].as_i64().expect("minReplicas");
    let max = hpa["spec"]["maxReplicas"].as_i64().expect("maxReplicas");
    let partitions = settings["kafka"]
        .get("partitions")
        .map_or(6, |p| p.as_integer().expect("kafka.partitions"));
    assert!(
        1 <= min && min <= max && max <= partitions,
        "HPA replicas {min}..{max}: more replicas than the {partitions} partitions would idle"
    );
    assert!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
            .as_i64()
            .is_some_and(|s| s >= 300),
        "the HPA needs a scale-down stabilisation window against rebalance storms"
    );

    // The ServiceMonitor scrapes the Service's named port.
    let monitor = object(&docs, "ServiceMonitor");
    assert_selects(
        &string_map(
            &monitor["spec"]["selector"]["matchLabels"],
            "ServiceMonitor selector",
        ),
        &string_map(&service["metadata"]["labels"], "Service labels"),
        "ServiceMonitor",
    );
    let endpoints = monitor["spec"]["endpoints"].as_array().expect("endpoints");
    assert!(!endpoints.is_empty());
    for e in endpoints {
        assert_eq!(e["port"], port_name, "ServiceMonitor endpoint {e}");
    }
}

#[test]
fn kubernetes_configmap_passes_d2c_check() {
    let docs = kubernetes_documents();
    let files = configmap_files(&docs);
    let dir = tempfile::tempdir().unwrap();
    for name in ["d2c.toml", "topology.toml", "change-policy.toml"] {
        let text = files
            .get(name)
            .unwrap_or_else(|| panic!("the ConfigMap holds no {name}"));
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // With the environment the Deployment gives the container (the pod name for fields).
    let deployment = object(&docs, "Deployment");
    let mut command = Command::new(env!("CARGO_BIN_EXE_d2c"));
    command
        .args(["check", "--config"])
        .arg(dir.path().join("d2c.toml"))
        .env("D2C_LOG", "warn");
    for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
    {
        let name = e["name"].as_str().unwrap();
        let value = e["value"].as_str().unwrap_or("d2c-5d8f7c9b6-x2x7q");
        command.env(name, value);
    }
    let o = command.output().expect("d2c runs");
    assert!(
        o.status.success(),
        "d2c check rejects the ConfigMap's files:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const DASHBOARD: &str = "deploy/grafana/dashboards/business-impact.json";

/// Every panel of the dashboard, the ones inside rows included.
fn dashboard_panels(panels: &Value, out: &mut Vec<Value>) {
    for p in panels.as_array().into_iter().flatten() {
        out.push(p.clone());
        dashboard_panels(&p["panels"], out);
    }
}

/// The metric names d2c exports, as written in src/telemetry (`"d2c_…"` strings), with the
/// series names of the histograms among them.
fn exported_metrics() -> BTreeSet<String> {
    let literal = regex::Regex::new(r#""(d2c_[a-z0-9_]+)""#).unwrap();
    let constructor = regex::Regex::new(r"histogram|gauge|counter|by_cap\(").unwrap();
    let mut names = BTreeSet::new();
    let dir = root().join("src/telemetry");
    for entry in std::fs::read_dir(&dir).expect("src/telemetry") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lower = text.to_ascii_lowercase();
        for m in literal.captures_iter(&text) {
            let name = m.get(1).unwrap();
            names.insert(name.as_str().to_string());
            // A histogram when the nearest constructor before the name builds one.
            let histogram = constructor
                .find_iter(&lower[..name.start()])
                .last()
                .is_some_and(|c| c.as_str() == "histogram");
            if histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{}{suffix}", name.as_str()));
                }
            }
        }
    }
    // The heuristic above, checked on known metrics.
    assert!(names.contains("d2c_mttr_seconds_bucket"), "{names:?}");
    assert!(names.contains("d2c_event_to_incident_seconds_bucket"));
    assert!(names.contains("d2c_events_per_incident_sum"));
    assert!(names.contains("d2c_capability_health"));
    assert!(!names.contains("d2c_capability_health_bucket"));
    assert!(!names.contains("d2c_topology_refreshes_total_count"));
    names
}

/// The recording rules' names in deploy/prometheus/rules.
fn recorded_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/prometheus/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let rel = f
            .strip_prefix(root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        for doc in yaml_documents(&rel) {
            for group in doc["groups"].as_array().into_iter().flatten() {
                for rule in group["rules"].as_array().into_iter().flatten() {
                    if let Some(r) = rule["record"].as_str() {
                        names.insert(r.to_string());
                    }
                }
            }
        }
    }
    assert!(names.contains("d2c:noise_reduction:ratio1h"), "{names:?}");
    names
}

/// `expr` with Grafana's variables replaced so that Prometheus can parse it: intervals and
/// ranges by `5m`, template variables by `.*` (they only appear in regex matchers).
fn without_grafana_variables(expr: &str) -> String {
    let intervals = regex::Regex::new(r"\$__(rate_interval|range|interval)\b").unwrap();
    let variables = regex::Regex::new(r"\$\{[A-Za-z0-9_]+\}|\$[A-Za-z_][A-Za-z0-9_]*").unwrap();
    let expr = intervals.replace_all(expr, "5m");
    variables.replace_all(&expr, ".*").into_owned()
}

#[test]
fn dashboard_is_complete_and_queries_only_existing_metrics_with_valid_promql() {
    let text = std::fs::read_to_string(root().join(DASHBOARD)).expect("the dashboard exists");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "d2c-business-impact");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 36));

    // The datasource the panels name is the one Grafana is provisioned with.
    let datasources = yaml_documents("deploy/grafana/provisioning/datasources/prometheus.yml");
    let uid = datasources[0]["datasources"][0]["uid"].clone();
    assert_eq!(uid, "prometheus");

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let capability = variables
        .iter()
        .find(|v| v["name"] == "capability")
        .expect("a `capability` variable");
    assert_eq!(capability["multi"], true);
    assert_eq!(capability["includeAll"], true);
    assert_eq!(
        capability["definition"],
        "label_values(d2c_capability_health, capability)"
    );

    let mut panels = Vec::new();
    dashboard_panels(&dashboard["panels"], &mut panels);
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in &panels {
        let id = p["id"].as_i64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        let pos = &p["gridPos"];
        assert!(
            pos["x"].as_i64().unwrap() + pos["w"].as_i64().unwrap() <= 24,
            "{title}: wider than the dashboard"
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(
            p["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{title}: no description"
        );
        assert_eq!(p["datasource"]["uid"], uid, "{title}: datasource");
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "{title}: a query without expr: {t}");
            exprs.push((title.to_string(), expr.to_string()));
        }
    }

    // Every metric named exists: exported by d2c or recorded by the rules.
    let mut known = exported_metrics();
    known.extend(recorded_series());
    let name = regex::Regex::new(r"d2c[_:][A-Za-z0-9_:]*").unwrap();
    let queries = exprs.iter().map(|(t, e)| (t.as_str(), e.as_str())).chain(
        variables
            .iter()
            .filter_map(|v| v["definition"].as_str().map(|d| ("variable", d))),
    );
    for (title, expr) in queries {
        for m in name.find_iter(expr) {
            assert!(
                known.contains(m.as_str()),
                "{title}: `{}` is neither exported by d2c (src/telemetry) nor recorded in deploy/prometheus/rules\n{expr}",
                m.as_str()
            );
        }
    }

    // Every query parses as PromQL: promtool checks them as recording rules.
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(n, (_, e))| {
            serde_json::json!({"record": format!("dashboard:expr_{n}"), "expr": without_grafana_variables(e)})
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yml");
    // JSON is YAML.
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    run(
        "promtool",
        &["check", "rules", path.to_str().unwrap()],
        "prometheus",
    );
}

#[test]
fn grafana_loads_the_dashboards_directory_compose_mounts() {
    let providers = yaml_documents("deploy/grafana/provisioning/dashboards/d2c.yml");
    let provider = &providers[0]["providers"][0];
    assert_eq!(provider["type"], "file");
    let path = provider["options"]["path"]
        .as_str()
        .expect("the provider's path");
    let compose = yaml_documents("docker-compose.yml");
    let volumes = compose[0]["services"]["grafana"]["volumes"]
        .as_array()
        .expect("grafana volumes");
    let mount = format!("./deploy/grafana/dashboards:{path}");
    assert!(
        volumes
            .iter()
            .filter_map(Value::as_str)
            .any(|v| v == mount || v.strip_suffix(":ro") == Some(&mount)),
        "docker-compose.yml does not mount deploy/grafana/dashboards at {path}: {volumes:?}"
    );
}

#[test]
fn without_grafana_variables_leaves_promql() {
    assert_eq!(
        without_grafana_variables(
            r#"sum(increase(x{capability=~"$capability"}[$__range])) / rate(y{a=~"${a}"}[$__rate_interval])"#
        ),
        r#"sum(increase(x{capability=~".*"}[5m])) / rate(y{a=~".*"}[5m])"#
    );
}
