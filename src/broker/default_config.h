/* default_config.h - built-in copy of config/kraft/server.properties. */
#ifndef SAMSA_DEFAULT_CONFIG_H
#define SAMSA_DEFAULT_CONFIG_H

extern const char samsa_default_server_properties[];

#endif
