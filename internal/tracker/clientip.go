package tracker

import "net/netip"

// anonymizeIP zeroes the last octet of an IPv4 address and the last 80 bits
// of an IPv6 one, as Metrica and Matomo do: enough to tell a region, never a
// person. The full address is never stored.
func anonymizeIP(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is4():
		return netip.PrefixFrom(a, 24).Masked().Addr().String()
	default:
		return netip.PrefixFrom(a, 48).Masked().Addr().String()
	}
}
