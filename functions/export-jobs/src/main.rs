#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    renji_shared::app::run_job(renji_export_jobs::run).await
}
