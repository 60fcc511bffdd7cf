// Everything of tram's runtime layer in one include.
#pragma once

#include <tram/accept_stream.hpp>
#include <tram/address.hpp>
#include <tram/driver.hpp>
#include <tram/file.hpp>
#include <tram/filesystem.hpp>
#include <tram/io_result.hpp>
#include <tram/multishot.hpp>
#include <tram/operation.hpp>
#include <tram/recv_stream.hpp>
#include <tram/blocking_pool.hpp>
#include <tram/resolve.hpp>
#include <tram/run.hpp>
#include <tram/socket.hpp>
#include <tram/spawn.hpp>
#include <tram/splice.hpp>
#include <tram/task.hpp>
#include <tram/tcp.hpp>
#include <tram/timer.hpp>
#include <tram/udp.hpp>
#include <tram/unix_socket.hpp>
#include <tram/when_all.hpp>
#include <tram/when_any.hpp>
#include <tram/worker_pool.hpp>
#include <tram/yield.hpp>
