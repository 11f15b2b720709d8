{
  # node-gyp equivalent of CMakeLists.txt (cmake-js is the primary build). The source list must
  # match CMakeLists.txt's: test/build-sources.test.ts checks it.
  "targets": [
    {
      "target_name": "myriad",
      "sources": [
        "native/core/address.cc",
        "native/core/engine.cc",
        "native/core/errors.cc",
        "native/core/reactor.cc",
        "native/core/timer_wheel.cc",
        "native/core/write_queue.cc",
        "native/addon/addon.cc"
      ],
      "conditions": [
        ["OS=='win'", {
          "sources": ["native/core/win/iocp_reactor.cc"],
          "libraries": ["ws2_32.lib", "mswsock.lib"]
        }, {
          "sources": ["native/core/linux/epoll_reactor.cc"]
        }]
      ],
      "include_dirs": ["native/core", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": { "CLANG_CXX_LANGUAGE_STANDARD": "c++17" },
      "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17"] } }
    }
  ]
}
