{
  # The addon, the init every container clone execs, the pause binary, the keeper and the
  # native core tests (nodecri-core-tests, without Node). Sources are
  # listed by folder so that a new file in native/core, native/napi or native/spawn is
  # picked up without editing this file: core/ is plain syscall code, napi/ is the N-API
  # glue, spawn/ is the parent side of the clone. child/ runs after the clone: stage 0
  # (exec_init.cc, in the addon) only execs nodecri-init, a static libc-free program built
  # from the rest of child/.
  "targets": [
    {
      "target_name": "nodecri",
      "sources": [
        "native/addon.cc",
        "<!@(node -p \"require('fs').readdirSync('native/napi').filter(f=>f.endsWith('.cc')).map(f=>'native/napi/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/core').filter(f=>f.endsWith('.cc')).map(f=>'native/core/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/spawn').filter(f=>f.endsWith('.cc')).map(f=>'native/spawn/'+f).join(' ')\")",
        "native/child/exec_init.cc",
        "native/child/clone_tramp.cc"
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
      "target_name": "nodecri-init",
      "type": "executable",
      "sources": ["native/child/init_main.cc", "native/child/child.cc", "native/child/clone_tramp.cc"],
      "include_dirs": ["native/include"],
      "defines": ["_GNU_SOURCE"],
      "cflags!": ["-pthread", "-fPIC"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                    "-ffreestanding", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-pie", "-fcf-protection=none"],
      "ldflags!": ["-pthread", "-rdynamic"],
      "ldflags": ["-static", "-nostdlib", "-no-pie", "-Wl,--gc-sections", "-Wl,--build-id=none"]
    },
    {
      "target_name": "nodecri-pause",
      "type": "executable",
      "sources": ["native/pause/pause.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror", "-static"],
      "ldflags": ["-static"]
    },
    {
      # Tests of core/ and spawn/ without Node (native/test, run by scripts/native-tests.js):
      # the same sources as the addon minus the N-API glue. It finds nodecri-init beside it.
      "target_name": "nodecri-core-tests",
      "type": "executable",
      "dependencies": ["nodecri-init"],
      "sources": [
        "native/test/core_tests.cc",
        "<!@(node -p \"require('fs').readdirSync('native/core').filter(f=>f.endsWith('.cc')).map(f=>'native/core/'+f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/spawn').filter(f=>f.endsWith('.cc')).map(f=>'native/spawn/'+f).join(' ')\")",
        "native/child/exec_init.cc",
        "native/child/clone_tramp.cc"
      ],
      "include_dirs": ["native/include"],
      "defines": ["_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-fstack-protector-strong"],
      "libraries": ["-lseccomp"]
    },
    {
      # The per-node keeper above the daemon (src/linux/keeper.ts): plain libc and C++.
      "target_name": "nodecri-keeper",
      "type": "executable",
      "sources": ["native/keeper/keeper.cc"],
      "defines": ["_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers", "-fstack-protector-strong"]
    }
  ]
}
