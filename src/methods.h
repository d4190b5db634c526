// Internal: the explanation methods, one line each (method.h); the first is the default. Each
// names a MethodInfo <name>_method_info() defined in src/method_<name>.cpp.
CLIPXAI_METHOD(chefer2021)
CLIPXAI_METHOD(rollout)
CLIPXAI_METHOD(attention)
CLIPXAI_METHOD(gradcam)
CLIPXAI_METHOD(legrad)
CLIPXAI_METHOD(grad_eclip)
