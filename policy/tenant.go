package policy

import "strings"

// MaxTenantLen is the maximum length of a tenant in bytes.
const MaxTenantLen = 64

// ValidTenant reports whether t matches [A-Za-z0-9_.-]{1,64}. A tenant
// can therefore hold none of the separators of channel names, client or
// internal.
func ValidTenant(t string) bool {
	if len(t) == 0 || len(t) > MaxTenantLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !segmentByte[t[i]] {
			return false
		}
	}
	return true
}

// tenantChannel maps a valid client channel "ns:rest" of a tenant-scoped
// namespace to its internal name "ns:@tenant/rest".
//
// The form is unambiguous and unreachable by clients: '@' and '/' are
// outside the client channel grammar, so a client-named channel never
// contains them, and tenant (ValidTenant) never contains '/', so the first
// '/' after "ns:@" ends the tenant and (tenant, channel) is recovered
// uniquely. The namespace stays in front, so Namespace still works on
// internal names.
func tenantChannel(channel, tenant string) string {
	ns, rest, _ := strings.Cut(channel, ":")
	return ns + ":@" + tenant + "/" + rest
}

// External maps an internal channel name (as returned by Set.Authorize or
// Set.Internal) back to the name the client used: "ns:@tenant/rest"
// becomes "ns:rest". Names that are not tenant-scoped are returned as is.
func External(internal string) string {
	ns, rest, ok := strings.Cut(internal, ":")
	if !ok || !strings.HasPrefix(rest, "@") {
		return internal
	}
	_, base, ok := strings.Cut(rest[1:], "/")
	if !ok {
		return internal
	}
	return ns + ":" + base
}

// InternalTenant returns the tenant of an internal channel name, or "" if
// the name is not tenant-scoped.
func InternalTenant(internal string) string {
	_, rest, ok := strings.Cut(internal, ":")
	if !ok || !strings.HasPrefix(rest, "@") {
		return ""
	}
	tenant, _, ok := strings.Cut(rest[1:], "/")
	if !ok {
		return ""
	}
	return tenant
}
