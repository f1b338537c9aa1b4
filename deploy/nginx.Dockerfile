# nginx from Debian's package with deploy/nginx.conf (docker-compose.yml builds it with
# deploy/ as the context; deploy/.dockerignore keeps the TLS keys out of the image).
# The TLS pair is mounted at /etc/nginx/tls (fullchain.pem, privkey.pem).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx=1.22.* curl=7.88.* \
    && rm -rf /var/lib/apt/lists/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx.conf nginx-problems.conf /etc/nginx/
EXPOSE 80 443
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
