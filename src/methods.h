// Internal: the explanation methods, one line each (method.h); the first is the default. Each
// names a MethodInfo <name>_method_info() defined in src/method_<name>.cpp.
CLIPXAI_METHOD(chefer2021)
