//! 40002: a value that does not fit the tag group's attribute is refused with `data` null and
//! the user's tags and their history unchanged.

use super::*;
use crate::helpers::TestApp;

crate::on_both_backends!(
    values_that_do_not_fit_the_attribute_answer_40002_and_leave_the_tag_as_it_was,
);

async fn values_that_do_not_fit_the_attribute_answer_40002_and_leave_the_tag_as_it_was(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    org.create_user("u1").await;
    let define = org.create_group("vip", "vip", "define", "cat").await;
    let number = org.create_group("spend", "spend", "number", "cat").await;
    let string = org.create_group("note", "note", "string", "cat").await;
    org.assign(&define, "u1", "True").await;
    org.assign(&number, "u1", "7").await;
    org.assign(&string, "u1", "kept").await;
    let before = snapshot(&org, &["cat"], &["u1"]).await;
    let too_long = "s".repeat(1025);
    let cases: [(&str, &str); 17] = [
        (&define, "yes"),
        (&define, ""),
        (&define, "2"),
        (&define, "truee"),
        (&define, " true"),
        (&number, "abc"),
        (&number, ""),
        (&number, "inf"),
        (&number, "NaN"),
        (&number, "-Infinity"),
        (&number, "0x10"),
        (&number, "1e999"),
        (&number, "1,5"),
        (&number, "1.2.3"),
        (&string, &too_long),
        (&string, "nul \u{0} inside"),
        (&define, "True!"),
    ];
    for (group, value) in cases {
        let answer = org.assign_answer(group, "u1", value).await;
        let msg = refused(&answer, 400, 40002);
        assert!(
            !msg.contains(&too_long),
            "the message does not echo the value"
        );
    }
    assert_eq!(snapshot(&org, &["cat"], &["u1"]).await, before);
    // The history has only the first write of each.
    let org_id = org_id(app, &org).await;
    for row in before[1]["rows"].as_array().expect("rows") {
        let entity = tagd_core::ExternalId::parse("id", row["entity_id"].as_str().expect("id"))
            .expect("hex");
        let history = app
            .store
            .assignment_history(org_id, &entity)
            .await
            .expect("history");
        assert_eq!(history.len(), 1, "{row}");
    }
}
