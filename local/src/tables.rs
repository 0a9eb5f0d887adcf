//! Creates the template's table in a DynamoDB endpoint (DynamoDB Local), from its declaration.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use renji_shared::store::schema::TABLE;
use serde_yaml::Value;

use crate::template::Template;

fn list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_sequence).into_iter().flatten()
}

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str, String> {
    v.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("table declaration lacks {field}"))
}

fn key_schema(v: Option<&Value>) -> Result<Vec<KeySchemaElement>, String> {
    list(v)
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Creates `table_name` as `template.yaml` declares the table; an existing table is left as is.
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), String> {
    let template = Template::load()?;
    let props = template
        .table_properties(TABLE.resource)
        .ok_or_else(|| format!("template.yaml declares no table {}", TABLE.resource))?;
    let attributes = list(props.get("AttributeDefinitions"))
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(a, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(a, "AttributeType")?))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = list(props.get("GlobalSecondaryIndexes"))
        .map(|g| {
            let projection = g
                .get("Projection")
                .map(|p| text(p, "ProjectionType"))
                .transpose()?
                .unwrap_or("ALL");
            GlobalSecondaryIndex::builder()
                .index_name(text(g, "IndexName")?)
                .set_key_schema(Some(key_schema(g.get("KeySchema"))?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection))
                        .build(),
                )
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let billing = props
        .get("BillingMode")
        .and_then(Value::as_str)
        .unwrap_or("PAY_PER_REQUEST");
    let created = client
        .create_table()
        .table_name(table_name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(props.get("KeySchema"))?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::from(billing))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(())
        }
        Err(e) => {
            return Err(format!(
                "create table: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        }
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName")?)
                    .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(true))
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "time to live: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
    }
    Ok(())
}
