//! Pulling from a real registry that asks for basic auth (the loopback registry with an
//! htpasswd file): the right credentials pull the image; wrong ones, or none, fail with a
//! message that says so, and leave the store as it was. (Credentials from a docker config file
//! are tested on the `cairn` binary, in the CLI's tests: `DOCKER_CONFIG` is process-wide.)

use crate::helpers::*;
use crate::registry::pull_options;
use cairn_engine::remote::{remote_inventory, Credentials, RegistrySpec, Tags};
use cairn_engine::{SourceSpec, StoreWriter};
use cairn_testkit::registry::*;

fn pull_as(
    writer: &StoreWriter,
    reference: &str,
    credentials: Option<Credentials>,
) -> cairn_engine::Result<()> {
    let mut options = pull_options(reference, "v1", &[]);
    if let SourceSpec::Registry(spec) = &mut options.source {
        spec.credentials = credentials;
    }
    writer
        .convert(&options, &cairn_engine::NoProgress)
        .map(drop)
}

fn credentials(password: &str) -> Option<Credentials> {
    Some(Credentials {
        user: USER.into(),
        password: password.into(),
    })
}

#[test]
fn a_registry_with_basic_auth_serves_the_right_credentials_and_refuses_others_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(registry) = LocalRegistry::start_with_auth(tmp.path()) else {
        return;
    };
    let (v1, _) = cairn_sample::write_demo_layouts(&tmp.path().join("images")).unwrap();
    registry.push(&v1, "v1", "demo:v1");
    let reference = format!("{}/demo:v1", registry.address);
    let local = new_store(&tmp.path().join("local"));
    convert(&local, &format!("oci:{}:v1", v1.display()), "v1", &[]).unwrap();

    let store = new_store(&tmp.path().join("pulled"));
    pull_as(&store, &reference, credentials(PASSWORD)).unwrap();
    assert_eq!(
        export_all(store.store(), "v1"),
        export_all(local.store(), "v1")
    );

    // A wrong password, then none at all (this machine's docker config has nothing for a
    // registry on a random port): each fails naming the registry and what to do, and the store
    // is exactly as it was.
    let store = new_store(&tmp.path().join("refused"));
    let (files, snap) = (store_files(store.store()), snapshot(store.store()));
    let wrong = pull_as(&store, &reference, credentials("not-the-password"))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains(&format!("http://{}/v2/demo", registry.address))
            && wrong.contains("the registry refused the credentials of user cairn"),
        "{wrong}"
    );
    assert_eq!(
        (store_files(store.store()), snapshot(store.store())),
        (files.clone(), snap.clone())
    );
    let anonymous = pull_as(&store, &reference, None).unwrap_err().to_string();
    assert!(
        anonymous.contains(&format!("http://{}/v2/demo", registry.address))
            && anonymous.contains("the registry requires credentials and none were found"),
        "{anonymous}"
    );
    assert_eq!(
        (store_files(store.store()), snapshot(store.store())),
        (files, snap)
    );
    assert!(store.store().images().unwrap().is_empty());

    // The remote inventory reads the same way.
    let spec = |password: &str| RegistrySpec {
        reference: format!("{}/demo", registry.address),
        insecure: true,
        credentials: credentials(password),
        timeouts: Default::default(),
    };
    let rows = remote_inventory(&spec(PASSWORD), &Tags::All, &cairn_engine::NoProgress).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let refused = remote_inventory(&spec("nope"), &Tags::All, &cairn_engine::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("refused the credentials"), "{refused}");
}
