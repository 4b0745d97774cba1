//! After the kills, the in-memory index of a fresh server answers what SQL answers: a server
//! with the index and one without (`--index-memory-mb 0`, every read from the database) list
//! the written users' tags byte for byte alike.

use super::*;

/// Users compared at most (spread over every user written).
const USERS_COMPARED: usize = 3_000;

pub(super) async fn check_index_matches_sql(
    database: &str,
    run: &Run,
    dir: &Path,
    s: &mut Summary,
) {
    let indexed = start_server(database, &dir.join("indexed.log")).await;
    let plain = start_server_with(
        database,
        &dir.join("plain.log"),
        &["--index-memory-mb", "0"],
    )
    .await;
    let client = client();
    wait_for_index(&client, &indexed).await;
    let step = (run.writes.len() / USERS_COMPARED).max(1);
    let mut compared = 0;
    for i in (0..run.writes.len()).step_by(step) {
        let path = format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=u{i}",
            run.tenant.corp_id
        );
        let from_index = list(&client, &indexed, &path, &run.tenant).await;
        let from_sql = list(&client, &plain, &path, &run.tenant).await;
        if from_index != from_sql {
            s.problem(format!(
                "u{i}: the index answered {from_index:?}, SQL {from_sql:?}"
            ));
        }
        compared += 1;
    }
    eprintln!("crash: index compared with SQL for {compared} users");
    stop(indexed).await;
    stop(plain).await;
}

async fn wait_for_index(client: &reqwest::Client, server: &TagdProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = client
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.contains("tagd_index_organizations_loaded 1") {
            return;
        }
        assert!(Instant::now() < deadline, "the index never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list(
    client: &reqwest::Client,
    server: &TagdProcess,
    path: &str,
    tenant: &Tenant,
) -> (u16, Vec<u8>) {
    let response = client
        .get(server.url(path))
        .bearer_auth(&tenant.token)
        .header("X-APP-ID", &tenant.app_id)
        .send()
        .await
        .expect("listed");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}
