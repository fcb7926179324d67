// Wrapper module that builds the OpenBao server (`bao`) from its published Go module.
//
// Upstream's go.mod points its api, sdk and api/auth/* submodules at local folders
// (replace => ./api, ./sdk, ...). Those replaces are ignored when OpenBao is a dependency,
// so this wrapper replaces each submodule with its published version at the same commit.
// The commit is OpenBao v2.4.0 (f9407a27fbee): its release tag is v2.x.y while the module
// path has no /v2, so it can only be pinned as a pseudo-version.
module openbao-backup.test/openbao

go 1.24.6

require github.com/openbao/openbao v0.0.0-20250828202315-f9407a27fbee

replace (
	github.com/openbao/openbao/api/auth/approle/v2 => github.com/openbao/openbao/api/auth/approle/v2 v2.0.0
	github.com/openbao/openbao/api/auth/kubernetes/v2 => github.com/openbao/openbao/api/auth/kubernetes/v2 v2.0.1
	github.com/openbao/openbao/api/auth/userpass/v2 => github.com/openbao/openbao/api/auth/userpass/v2 v2.0.0
	github.com/openbao/openbao/api/v2 => github.com/openbao/openbao/api/v2 v2.4.0
	github.com/openbao/openbao/sdk/v2 => github.com/openbao/openbao/sdk/v2 v2.4.0
)
