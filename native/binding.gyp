{
  "targets": [
    {
      "target_name": "qkdgw_native",
      "sources": ["src/addon.c", "src/gcm.c", "src/sd_notify.c"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=0x30000000L", "OPENSSL_NO_DEPRECATED"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
      }
    }
  ]
}
