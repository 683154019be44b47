# Manual pages and the Debian package.
#
# Each binary's manual page is generated from its --help and --version by help2man (section 8:
# the plugins are run by container runtimes, the installer and the agent by the cluster's
# operator). `cpack -G DEB` then makes dualstack-cni_<version>_<arch>.deb, which lintian accepts
# without errors or warnings (scripts/package-test.sh checks it).

# The date in generated files is the commit's, so a rebuild of one commit gives the same files.
execute_process(COMMAND git log -1 --format=%ct
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE DUALSTACK_SOURCE_EPOCH
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT DUALSTACK_SOURCE_EPOCH)
  string(TIMESTAMP DUALSTACK_SOURCE_EPOCH "%s" UTC)
endif()

set(DUALSTACK_MAN_dualstack "CNI plugin attaching a pod with a dual-stack veth pair")
set(DUALSTACK_MAN_dualstack-ipam "CNI IPAM plugin for one IPv4 and one IPv6 address per pod")
set(DUALSTACK_MAN_dualstack-install "install dualstack-cni on a Kubernetes node")
set(DUALSTACK_MAN_dualstack-agent "route pod CIDRs between the nodes of a cluster")

find_program(HELP2MAN help2man)
find_program(GZIP gzip REQUIRED)
get_property(dualstack_binaries GLOBAL PROPERTY DUALSTACK_BINARIES)
if(HELP2MAN)
  set(man_pages)
  foreach(bin IN LISTS dualstack_binaries)
    set(summary "${DUALSTACK_MAN_${bin}}")
    if(NOT summary)
      message(FATAL_ERROR "cmake/package.cmake: set DUALSTACK_MAN_${bin} (the manual page's NAME line)")
    endif()
    set(page ${CMAKE_BINARY_DIR}/man/${bin}.8.gz)
    # CNI_COMMAND unset: the binaries answer --help and --version as commands.
    add_custom_command(OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -E env --unset=CNI_COMMAND SOURCE_DATE_EPOCH=${DUALSTACK_SOURCE_EPOCH}
              ${HELP2MAN} --no-info --no-discard-stderr --section=8 --name=${summary}
              --output=${CMAKE_BINARY_DIR}/man/${bin}.8 ${CMAKE_BINARY_DIR}/bin/${bin}
      COMMAND ${GZIP} -9nf ${CMAKE_BINARY_DIR}/man/${bin}.8
      DEPENDS ${bin} ${CMAKE_BINARY_DIR}/bin/${bin}
      COMMENT "Manual page ${bin}.8"
      VERBATIM)
    list(APPEND man_pages ${page})
  endforeach()
  add_custom_target(man ALL DEPENDS ${man_pages})
  install(FILES ${man_pages} DESTINATION share/man/man8)
else()
  message(STATUS "help2man not found: no manual pages (apt-get install help2man)")
endif()

# The package's version: git describe's, with '+' where Debian does not allow '-'.
string(REPLACE "-" "+" DUALSTACK_DEB_VERSION "${DUALSTACK_GIT_VERSION}")
set(DUALSTACK_DEB_MAINTAINER "dualstack-cni maintainers <maintainers@dualstack-cni.org>"
  CACHE STRING "The Maintainer of the Debian package")

# /usr/share/doc/dualstack-cni: copyright (machine-readable) and a changelog of this build.
execute_process(COMMAND date -u -R -d @${DUALSTACK_SOURCE_EPOCH}
  OUTPUT_VARIABLE changelog_date OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
set(doc_dir ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${doc_dir})
file(WRITE ${doc_dir}/changelog "dualstack-cni (${DUALSTACK_DEB_VERSION}) unstable; urgency=medium

  * Built from ${DUALSTACK_GIT_VERSION}.
    The changes are in the project's git history.

 -- ${DUALSTACK_DEB_MAINTAINER}  ${changelog_date}
")
add_custom_command(OUTPUT ${doc_dir}/changelog.gz
  COMMAND ${GZIP} -9nc ${doc_dir}/changelog > ${doc_dir}/changelog.gz
  DEPENDS ${doc_dir}/changelog VERBATIM)
add_custom_target(package_docs ALL DEPENDS ${doc_dir}/changelog.gz)
install(FILES ${doc_dir}/changelog.gz ${CMAKE_SOURCE_DIR}/packaging/copyright
  DESTINATION share/doc/dualstack-cni)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dualstack-cni)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_VERSION ${DUALSTACK_DEB_VERSION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGE_CONTACT "${DUALSTACK_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "CNI plugin giving each pod one IPv4 and one IPv6 address")
# Lines of at most 80 columns (Debian policy 3.4.1).
set(CPACK_PACKAGE_DESCRIPTION "dualstack attaches a pod with a veth pair and routes both address
families; dualstack-ipam hands out one address per family from the node's pod
CIDRs, in a store compatible with host-local. dualstack-install installs them
on Kubernetes nodes. The plugins are installed in ${DUALSTACK_CNI_BIN_DIR}.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libcurl (node.kubeconfig) and libnftables (ipMasq) are dlopen'ed only when used.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libcurl4, libnftables1")
set(CPACK_STRIP_FILES ON)
include(CPack)
