#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    renji_shared::app::run_job(renji_deletion_jobs::run).await
}
