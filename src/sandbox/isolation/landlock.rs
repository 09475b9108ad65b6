//! The Landlock ruleset a sandbox restricts itself with: read and execute anywhere, write only
//! under its own folder, no outbound TCP and no TCP bind but on its own port, and no signals or
//! abstract Unix sockets reaching outside the sandbox. Rights the kernel lacks are skipped
//! (best effort), so older kernels enforce what they can.

use landlock::{
    ABI, Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, path_beneath_rules,
};
use serde::{Deserialize, Serialize};

/// The newest ABI these rules use; older kernels get the subset they support.
const ABI_USED: ABI = ABI::V7;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LandlockRules {
    /// The only folder the handler may write under.
    pub writable: std::path::PathBuf,
    /// The TCP port the handler may bind, when it binds its own.
    pub bind_port: Option<u16>,
    /// Whether the handler may open outbound TCP connections and bind other ports.
    pub network: bool,
}

/// Returns the Landlock ABI the running kernel supports, or 0 when it has none.
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag only
    // returns the ABI version (or an error); it creates nothing.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if version < 0 { 0 } else { version as i32 }
}

/// Restricts this process and its future children; describes what was enforced.
pub fn restrict(rules: &LandlockRules) -> anyhow::Result<String> {
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(ABI_USED))?;
    if !rules.network {
        ruleset = ruleset.handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?;
    }
    let mut created = ruleset
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(ABI_USED)))?
        .add_rules(path_beneath_rules(
            [&rules.writable],
            AccessFs::from_all(ABI_USED),
        ))?
        .add_rules(path_beneath_rules(
            ["/dev/null", "/dev/zero"],
            AccessFs::from_all(ABI_USED),
        ))?;
    if !rules.network
        && let Some(port) = rules.bind_port
    {
        created = created.add_rule(NetPort::new(port, AccessNet::BindTcp))?;
    }
    let status = created.restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced".into(),
        RulesetStatus::PartiallyEnforced => {
            format!("partly enforced (kernel Landlock ABI {})", kernel_abi())
        }
        RulesetStatus::NotEnforced => "not enforced (no Landlock in this kernel)".into(),
    })
}
