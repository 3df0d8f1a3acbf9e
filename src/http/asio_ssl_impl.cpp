// Separate compilation of Asio's SSL layer (core/asio_impl.cpp compiles the rest): here, in the layer that
// links OpenSSL, so the core stays free of it.
#include <boost/asio/ssl/impl/src.hpp>
