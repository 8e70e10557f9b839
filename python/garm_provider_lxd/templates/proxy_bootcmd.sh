if [ -d "/etc/apt/apt.conf.d" ]; then
	APT_PROXY_CONF="/etc/apt/apt.conf.d/95garm-proxy"
	: > "$APT_PROXY_CONF"
	[ -n "$HTTP_PROXY" ] && printf 'Acquire::http::Proxy "%s";\n' "$HTTP_PROXY" >> "$APT_PROXY_CONF"
	[ -n "$HTTPS_PROXY" ] && printf 'Acquire::https::Proxy "%s";\n' "$HTTPS_PROXY" >> "$APT_PROXY_CONF"
elif [ -f /etc/dnf/dnf.conf ]; then
	PROXY="${HTTP_PROXY:-$HTTPS_PROXY}"
	[ -n "$PROXY" ] && grep -q '^proxy=' /etc/dnf/dnf.conf || echo "proxy=$PROXY" >> /etc/dnf/dnf.conf
elif [ -f /etc/yum.conf ]; then
	PROXY="${HTTP_PROXY:-$HTTPS_PROXY}"
	[ -n "$PROXY" ] && grep -q '^proxy=' /etc/yum.conf || echo "proxy=$PROXY" >> /etc/yum.conf
elif [ -d /etc/zypp ]; then
	printf 'PROXY_ENABLED="yes"\n' > /etc/sysconfig/proxy
	[ -n "$HTTP_PROXY" ] && printf 'HTTP_PROXY="%s"\n' "$HTTP_PROXY" >> /etc/sysconfig/proxy
	[ -n "$HTTPS_PROXY" ] && printf 'HTTPS_PROXY="%s"\n' "$HTTPS_PROXY" >> /etc/sysconfig/proxy
	[ -n "$NO_PROXY" ] && printf 'NO_PROXY="%s"\n' "$NO_PROXY" >> /etc/sysconfig/proxy
fi
