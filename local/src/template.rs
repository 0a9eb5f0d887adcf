//! Reads `template.yaml`, compiled in, so the local server serves exactly the template's routes
//! and creates exactly the template's table.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// The SAM template this build was made from.
pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// One HTTP API route: `METHOD /path/{param}` served by a function.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The function's logical id in the template, e.g. `AuthFunction`.
    pub function: String,
}

impl Route {
    /// The API Gateway route key, e.g. `GET /v1/users/{id}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

pub struct Template {
    root: Value,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let root: Value = serde_yaml::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
        Ok(Template { root })
    }

    pub fn load() -> Result<Self, String> {
        Self::parse(TEMPLATE)
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    /// Every `HttpApi` event of every function, sorted.
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = Vec::new();
        for (name, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|m| m.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event.get("Properties");
                let field = |f: &str| props.and_then(|p| p.get(f)).and_then(Value::as_str);
                if let (Some(method), Some(path)) = (field("Method"), field("Path")) {
                    routes.push(Route {
                        method: method.to_ascii_uppercase(),
                        path: path.to_owned(),
                        function: name.to_owned(),
                    });
                }
            }
        }
        routes.sort();
        routes
    }

    /// Every `Schedule` event: the function's logical id and its schedule expression, sorted.
    pub fn schedules(&self) -> Vec<(String, String)> {
        let mut schedules = Vec::new();
        for (name, resource) in self.resources() {
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|m| m.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("Schedule") {
                    continue;
                }
                if let Some(expression) = event
                    .get("Properties")
                    .and_then(|p| p.get("Schedule"))
                    .and_then(Value::as_str)
                {
                    schedules.push((name.to_owned(), expression.to_owned()));
                }
            }
        }
        schedules.sort();
        schedules
    }

    /// The build binary of each function (`Metadata.BuildProperties.Binary`), by logical id.
    pub fn function_binaries(&self) -> BTreeMap<String, String> {
        self.resources()
            .filter_map(|(name, r)| {
                let binary = r
                    .get("Metadata")?
                    .get("BuildProperties")?
                    .get("Binary")?
                    .as_str()?;
                Some((name.to_owned(), binary.to_owned()))
            })
            .collect()
    }

    /// The environment variables `function` gets: the globals' and its own (its own win), as
    /// written in the template (a plain string, or an intrinsic such as `!Ref`).
    pub fn function_env(&self, function: &str) -> Vec<(String, Value)> {
        let vars = |v: Option<&Value>| -> Vec<(String, Value)> {
            v.and_then(|v| v.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
                .collect()
        };
        let mut env = vars(self.root.get("Globals").and_then(|g| g.get("Function")));
        for (name, value) in vars(self.resource(function).and_then(|f| f.get("Properties"))) {
            env.retain(|(n, _)| *n != name);
            env.push((name, value));
        }
        env
    }

    /// A resource by logical id.
    pub fn resource(&self, name: &str) -> Option<&Value> {
        self.resources().find(|(n, _)| *n == name).map(|(_, r)| r)
    }

    /// The logical id of the DynamoDB table resource.
    pub fn table_resource(&self) -> Option<&str> {
        self.resources()
            .find(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
            .map(|(name, _)| name)
    }

    /// The `Properties` of a DynamoDB table resource.
    pub fn table_properties(&self, resource: &str) -> Option<&Value> {
        self.resources()
            .find(|(name, r)| {
                *name == resource
                    && r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table")
            })
            .and_then(|(_, r)| r.get("Properties"))
    }
}
