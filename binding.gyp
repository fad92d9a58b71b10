{
  # One addon target and the pause binary. Sources are listed by folder so that a new
  # file in native/core, native/napi, native/spawn or native/child is picked up without
  # editing this file: core/ is plain syscall code, napi/ is the N-API glue, spawn/ is the
  # parent side of the clone, child/ runs after the clone (async-signal-safe only).
  "targets": [
    {
      "target_name": "nodecri",
      "sources": [
        "native/addon.cc",
        "<!@(node -p \"require('fs').readdirSync('native/napi').filter(f=>f.endsWith('.cc')).map(f=>'native/napi/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/core').filter(f=>f.endsWith('.cc')).map(f=>'native/core/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/spawn').filter(f=>f.endsWith('.cc')).map(f=>'native/spawn/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/child').filter(f=>f.endsWith('.cc')).map(f=>'native/child/'+f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-fstack-protector-strong"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "nodecri-pause",
      "type": "executable",
      "sources": ["native/pause/pause.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror", "-static"],
      "ldflags": ["-static"]
    }
  ]
}
